package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/wscanary/wscanary/monitor/store"
	"github.com/wscanary/wscanary/notifier"
)

// BenchmarkClaimFor is one claim and its delivery's end (Done) with a
// backlog of n incidents waiting: the cost per message must not grow with
// the backlog, or a storm after an outage drains in n².
func BenchmarkClaimFor(b *testing.B) {
	for _, n := range []int{100, 3000} {
		b.Run(fmt.Sprintf("backlog=%d", n), func(b *testing.B) {
			ctx := context.Background()
			s, err := store.Open(ctx, store.Options{Dir: b.TempDir()})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			now := time.Now()
			seq := 0
			enqueue := func(k int) {
				err := s.Update(ctx, func(tx *store.Tx) error {
					for range k {
						seq++
						m := notifier.Message{ID: fmt.Sprintf("m%d", seq), Kind: notifier.KindOpen, Channel: "#c"}
						if err := tx.Enqueue(ctx, m, fmt.Sprintf("inc%d", seq), now); err != nil {
							return err
						}
					}
					return nil
				})
				if err != nil {
					b.Fatal(err)
				}
			}
			enqueue(n)
			b.ResetTimer()
			for b.Loop() {
				e, err := s.ClaimFor(ctx, "me", "", now, time.Minute)
				if err != nil || e == nil {
					b.Fatal("nothing claimed", err)
				}
				if err := s.Done(ctx, e, notifier.Delivery{}, now); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				enqueue(1) // the backlog stays at n
				b.StartTimer()
			}
		})
	}
}
