package lifecycle

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/flink-gitops/flink-gitops/render"
)

// isoDuration matches ISO-8601 durations as Java's Duration.parse reads
// them: PnD, then T with nH, nM and n(.n)S, each part optional.
var isoDuration = regexp.MustCompile(`^(?i)P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$`)

// parseISODuration parses an ISO-8601 duration such as PT1H or P1DT30M.
func parseISODuration(s string) (time.Duration, bool) {
	m := isoDuration.FindStringSubmatch(strings.TrimSpace(s))
	if m == nil || strings.EqualFold(s, "P") || strings.HasSuffix(strings.ToUpper(s), "T") {
		return 0, false
	}
	var d time.Duration
	for i, unit := range []time.Duration{24 * time.Hour, time.Hour, time.Minute} {
		if m[i+1] != "" {
			n, err := strconv.ParseInt(m[i+1], 10, 64)
			if err != nil {
				return 0, false
			}
			d += time.Duration(n) * unit
		}
	}
	if m[4] != "" {
		f, err := strconv.ParseFloat(m[4], 64)
		if err != nil {
			return 0, false
		}
		d += time.Duration(f * float64(time.Second))
	}
	return d, true
}

// nextPeriodic returns when the next periodic snapshot is due after last,
// for an interval that is a duration (Flink or ISO-8601 syntax) or a Quartz
// cron expression; ok is false when periodic snapshots are off (0, unset)
// or the value cannot be read.
func nextPeriodic(value string, last time.Time) (next time.Time, ok bool, err error) {
	value = strings.TrimSpace(value)
	if value == "" {
		return time.Time{}, false, nil
	}
	if len(strings.Fields(value)) >= 6 {
		s, err := render.ParseCron(value)
		if err != nil {
			return time.Time{}, false, err
		}
		next := s.Next(last)
		if next.IsZero() {
			return time.Time{}, false, fmt.Errorf("cron %q never fires: no date matches it", value)
		}
		return next, true, nil
	}
	d, err := parseFlinkDuration(value)
	if err != nil {
		return time.Time{}, false, err
	}
	if d <= 0 {
		return time.Time{}, false, nil
	}
	return last.Add(d), true, nil
}

// nextPeriodicFloor is nextPeriodic, but never sooner than floor after
// last: however the schedule is written (or the daemon's floor raised
// after it was validated), periodic snapshots do not fire more often.
func nextPeriodicFloor(value string, last time.Time, floor time.Duration) (time.Time, bool, error) {
	at, ok, err := nextPeriodic(value, last)
	if ok && floor > 0 && !last.IsZero() && at.Before(last.Add(floor)) {
		at = last.Add(floor)
	}
	return at, ok, err
}
