package kube_test

import (
	"bufio"
	"context"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flink-gitops/flink-gitops/tests/testbed/kube"
)

// BenchmarkStart measures start-up to /readyz and the memory of each process
// right after. It reports the median start time and, per process, the
// median VmRSS in MiB. Run with:
//
//	go test ./tests/testbed/kube -run '^$' -bench Start -benchtime 5x
func BenchmarkStart(b *testing.B) {
	for _, tc := range []struct {
		name string
		opts []kube.Option
	}{
		{"apiserver", nil},
		{"with-controller-manager", []kube.Option{kube.WithControllerManager()}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			if testing.Short() {
				b.Skip("integration benchmark: needs the test bed")
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
			defer cancel()
			if _, _, err := kube.Binaries(ctx); err != nil { // build outside the timing
				b.Fatal(err)
			}
			var times []float64
			rss := map[string][]float64{}
			b.ResetTimer()
			for range b.N {
				start := time.Now()
				c, err := kube.NewCluster(ctx, "", tc.opts...)
				if err != nil {
					b.Fatal(err)
				}
				times = append(times, time.Since(start).Seconds())
				for _, p := range c.Processes() {
					kb, err := vmRSS(p.PID)
					if err != nil {
						b.Error(err)
					}
					rss[p.Name] = append(rss[p.Name], float64(kb)/1024)
				}
				if err := c.Stop(); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			b.ReportMetric(median(times), "median-s-to-ready")
			for name, v := range rss {
				b.ReportMetric(median(v), "MiB-rss-"+name)
			}
		})
	}
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// vmRSS reads VmRSS (KiB) of pid from /proc/<pid>/status.
func vmRSS(pid int) (int, error) {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			return strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
		}
	}
	return 0, sc.Err()
}
