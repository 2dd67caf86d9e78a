package lifecycle

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
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

// quartzParser reads the operator's cron expressions (Quartz syntax: seconds
// first, '?' for "no specific value", an optional year).
var quartzParser = cron.NewParser(cron.Second | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow)

// parseQuartzCron parses a Quartz cron expression. Quartz numbers the days
// of the week 1 (Sunday) to 7, cron/v3 0 to 6; L, W and # are not supported
// (a clear error); a year field is accepted only as * (every year).
func parseQuartzCron(expr string) (cron.Schedule, error) {
	f := strings.Fields(expr)
	if len(f) == 7 {
		if f[6] != "*" {
			return nil, fmt.Errorf("cron %q: a year field other than * is not supported", expr)
		}
		f = f[:6]
	}
	if len(f) != 6 {
		return nil, fmt.Errorf("cron %q: want 6 or 7 fields (seconds minutes hours day-of-month month day-of-week [year])", expr)
	}
	dow, err := quartzDOW(f[5])
	if err != nil {
		return nil, fmt.Errorf("cron %q: %w", expr, err)
	}
	f[5] = dow
	s, err := quartzParser.Parse(strings.Join(f, " "))
	if err != nil {
		return nil, fmt.Errorf("cron %q: %w", expr, err)
	}
	return s, nil
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
		s, err := parseQuartzCron(value)
		if err != nil {
			return time.Time{}, false, err
		}
		return s.Next(last), true, nil
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

// quartzDOW renumbers a Quartz day-of-week field (1 = Sunday … 7) for
// cron/v3 (0 = Sunday … 6). Step values (after '/') are counts, not days.
func quartzDOW(field string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(field); {
		c := field[i]
		if c < '0' || c > '9' {
			b.WriteByte(c)
			i++
			continue
		}
		j := i
		for j < len(field) && field[j] >= '0' && field[j] <= '9' {
			j++
		}
		if i > 0 && field[i-1] == '/' {
			b.WriteString(field[i:j])
		} else {
			v, _ := strconv.Atoi(field[i:j])
			if v < 1 || v > 7 {
				return "", fmt.Errorf("day of week %d is outside 1-7 (1 is Sunday)", v)
			}
			b.WriteString(strconv.Itoa(v - 1))
		}
		i = j
	}
	return b.String(), nil
}
