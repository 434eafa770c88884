package history

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/wscanary/wscanary/monitor/report"
	"github.com/wscanary/wscanary/monitor/store"
)

// WriteSilences prints the silences of `wscanary silence list`: a table
// for a person, or one JSON array (never null) for a script.
func WriteSilences(w io.Writer, sls []store.Silence, asJSON bool) error {
	if asJSON {
		if sls == nil {
			sls = []store.Silence{}
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(sls)
	}
	if len(sls) == 0 {
		_, err := fmt.Fprintln(w, "no silences")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tCHECK\tVANTAGE\tFROM\tUNTIL\tBY\tREASON")
	for _, sl := range sls {
		v := sl.Vantage
		if v == "" {
			v = "*"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", sl.ID, sl.Check, v, sl.Starts.Local().Format("01-02 15:04"),
			sl.Ends.Local().Format("01-02 15:04"), sl.By, report.OneLine(sl.Reason, 60))
	}
	return tw.Flush()
}
