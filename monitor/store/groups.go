package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/wscanary/wscanary/notifier"
)

// A group's members (README, "Groups") are rows of their own: a member that
// joins, recovers or leaves writes its row, and the group's message is
// built from counts and the first names, so a group of thousands costs
// each member's decision a few small statements.

// GroupMember is a member's row: its line in the group's message and what
// the engine needs to follow it.
type GroupMember struct {
	notifier.GroupMember
	// Joined orders the members as they came.
	Joined time.Time
}

// PutMember writes a member's row.
func (t *Tx) PutMember(ctx context.Context, groupID string, m GroupMember) error {
	open := 0
	if m.Open {
		open = 1
	}
	err := t.exec(ctx, `INSERT INTO group_members (group_id, incident, check_name, open, failing, member_key, pop, away, joined)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (group_id, incident) DO UPDATE SET check_name = excluded.check_name, open = excluded.open,
			failing = excluded.failing, member_key = excluded.member_key, pop = excluded.pop, away = excluded.away`,
		groupID, m.Incident, m.Check, open, m.Failing, m.Key, m.Pop, ms(m.Away), ms(m.Joined))
	if err != nil {
		return fmt.Errorf("write member %s of %s: %w", m.Check, groupID, err)
	}
	return nil
}

// DropMember removes a member that left its group.
func (t *Tx) DropMember(ctx context.Context, groupID, incidentID string) error {
	if err := t.exec(ctx, "DELETE FROM group_members WHERE group_id = ? AND incident = ?", groupID, incidentID); err != nil {
		return fmt.Errorf("drop member of %s: %w", groupID, err)
	}
	return nil
}

const groupMemberCols = "incident, check_name, open, failing, member_key, pop, away, joined"

func scanGroupMember(row scanner) (GroupMember, error) {
	var m GroupMember
	var open int
	var away, joined int64
	err := row.Scan(&m.Incident, &m.Check, &open, &m.Failing, &m.Key, &m.Pop, &away, &joined)
	m.Open, m.Away, m.Joined = open == 1, fromMS(away), fromMS(joined)
	return m, err
}

// Member is a member's row, nil if the incident is not in the group.
func (t *Tx) Member(ctx context.Context, groupID, incidentID string) (*GroupMember, error) {
	m, err := scanGroupMember(t.tx.QueryRowContext(ctx, t.s.q("SELECT "+groupMemberCols+" FROM group_members WHERE group_id = ? AND incident = ?"),
		groupID, incidentID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read member of %s: %w", groupID, err)
	}
	return &m, nil
}

// GroupCount is what a group's message counts: its members, those open,
// and the open ones by key (whether most of them share another).
type GroupCount struct {
	Members, Open int
	OpenByKey     map[string]int
}

// GroupCounts counts a group's members.
func (t *Tx) GroupCounts(ctx context.Context, groupID string) (GroupCount, error) {
	c := GroupCount{OpenByKey: map[string]int{}}
	rows, err := t.tx.QueryContext(ctx, t.s.q(`SELECT open, member_key, COUNT(*) FROM group_members WHERE group_id = ?
		GROUP BY open, member_key`), groupID)
	if err != nil {
		return c, fmt.Errorf("count members of %s: %w", groupID, err)
	}
	defer rows.Close()
	for rows.Next() {
		var open, n int
		var key string
		if err := rows.Scan(&open, &key, &n); err != nil {
			return c, fmt.Errorf("count members of %s: %w", groupID, err)
		}
		c.Members += n
		if open == 1 {
			c.Open += n
			c.OpenByKey[key] += n
		}
	}
	return c, rows.Err()
}

// GroupNames are the first limit members, open or not, in the order they
// joined: the names a group's message shows.
func (t *Tx) GroupNames(ctx context.Context, groupID string, open bool, limit int) ([]string, error) {
	o := 0
	if open {
		o = 1
	}
	return names(ctx, t.tx, "members of "+groupID, t.s.q(`SELECT check_name FROM group_members WHERE group_id = ? AND open = ?
		ORDER BY joined, check_name LIMIT ?`), groupID, o, limit)
}

// GroupChecks are every member's check: the status page's filter.
func (s *Store) GroupChecks(ctx context.Context, groupID string) ([]string, error) {
	return names(ctx, s.db, "members of "+groupID, s.q("SELECT check_name FROM group_members WHERE group_id = ? ORDER BY joined, check_name"), groupID)
}

// GroupMembers are a group's rows, in the order they joined.
func (t *Tx) GroupMembers(ctx context.Context, groupID string) ([]GroupMember, error) {
	rows, err := t.tx.QueryContext(ctx, t.s.q("SELECT "+groupMemberCols+" FROM group_members WHERE group_id = ? ORDER BY joined, check_name"), groupID)
	if err != nil {
		return nil, fmt.Errorf("members of %s: %w", groupID, err)
	}
	defer rows.Close()
	var out []GroupMember
	for rows.Next() {
		m, err := scanGroupMember(rows)
		if err != nil {
			return nil, fmt.Errorf("members of %s: %w", groupID, err)
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

// GroupPops are the edge locations that answered a group's failing
// members, at most limit of them.
func (t *Tx) GroupPops(ctx context.Context, groupID string, limit int) ([]string, error) {
	return names(ctx, t.tx, "locations of "+groupID, t.s.q(`SELECT DISTINCT pop FROM group_members WHERE group_id = ? AND open = 1 AND pop <> ''
		ORDER BY pop LIMIT ?`), groupID, limit)
}

// names reads one text column of every row a query returns.
func names(ctx context.Context, qr querier, what, query string, args ...any) ([]string, error) {
	rows, err := qr.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		out = append(out, n)
	}
	return out, rows.Err()
}
