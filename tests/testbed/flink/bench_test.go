package flinktb

import (
	"context"
	"slices"
	"testing"
	"time"
)

// BenchmarkStart starts a session cluster (one JobManager, one TaskManager)
// per iteration and reports the medians of the start-up phases and of the
// idle RSS right after start. Run with:
//
//	go test ./tests/testbed/flink -run '^$' -bench Start -benchtime 5x
func BenchmarkStart(b *testing.B) {
	if testing.Short() {
		b.Skip("integration benchmark: needs the test bed")
	}
	for _, v := range Versions {
		b.Run(v, func(b *testing.B) {
			ctx := context.Background()
			if _, err := Ensure(ctx, v); err != nil {
				b.Fatal(err)
			}
			var cmds, jm, tm, total []float64
			var jmRSS, tmRSS []float64
			for range b.N {
				dir := b.TempDir()
				t0 := time.Now()
				c, err := NewSession(ctx, dir, v)
				if err != nil {
					b.Fatal(err)
				}
				total = append(total, time.Since(t0).Seconds())
				cmds = append(cmds, c.Startup.Commands.Seconds())
				jm = append(jm, c.Startup.JobManagerREST.Seconds())
				tm = append(tm, c.Startup.TaskManagersRegistered.Seconds())
				rss, err := c.RSS()
				c.Stop()
				if err != nil {
					b.Fatal(err)
				}
				jmRSS = append(jmRSS, float64(rss["jobmanager"])/(1<<20))
				tmRSS = append(tmRSS, float64(rss["taskmanager-0"])/(1<<20))
			}
			b.ReportMetric(median(cmds), "median-s-commands")
			b.ReportMetric(median(jm), "median-s-jm-rest")
			b.ReportMetric(median(tm), "median-s-tm-registered")
			b.ReportMetric(median(total), "median-s-total")
			b.ReportMetric(median(jmRSS), "MiB-rss-jm")
			b.ReportMetric(median(tmRSS), "MiB-rss-tm")
		})
	}
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}
