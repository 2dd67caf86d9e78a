package render

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/flink-gitops/flink-gitops/render/v1beta1"
)

// quartzParser reads the operator's cron expressions (Quartz syntax: seconds
// first, '?' for "no specific value", an optional year).
var quartzParser = cron.NewParser(cron.Second | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow)

// ParseCron parses a Quartz cron expression. Quartz numbers the days
// of the week 1 (Sunday) to 7, cron/v3 0 to 6; L, W and # are not supported
// (a clear error); a year field is accepted only as * (every year).
func ParseCron(expr string) (cron.Schedule, error) {
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

// scheduleKeys hold an interval or a cron expression of periodic snapshots.
var scheduleKeys = []string{keyPeriodicSavepoint, operatorPrefix + "periodic.checkpoint.interval"}

// policies applies the daemon's policies to a FlinkDeployment: pod policy
// and schedule floor. conf is the effective Flink configuration.
func (v *validator) policies(d *v1beta1.FlinkDeployment, conf v1beta1.FlinkConfiguration) []fieldError {
	return append(v.podPolicy(d), v.schedules(conf)...)
}

// schedules refuses periodic snapshot schedules that never fire or fire
// more often than the daemon's floor.
func (v *validator) schedules(conf v1beta1.FlinkConfiguration) []fieldError {
	var errs []fieldError
	for _, k := range scheduleKeys {
		val := strings.TrimSpace(conf[k])
		if val == "" {
			continue
		}
		if msg, fix := checkSchedule(val, v.opts.MinPeriodicInterval, time.Now()); msg != "" {
			errs = append(errs, fieldError{Field: mapKey("spec.flinkConfiguration", k), Message: msg, Fix: fix})
		}
	}
	return errs
}

// cronSamples is how many consecutive fire times of a cron expression are
// compared with the floor.
const cronSamples = 32

// checkSchedule returns why an interval or cron value is not acceptable
// (and the fix), or "" when it is (malformed values are checkValue's).
func checkSchedule(value string, floor time.Duration, now time.Time) (msg, fix string) {
	floorFix := fmt.Sprintf("schedule them at least %s apart (the daemon's reconcile.minPeriodicInterval)", floor)
	if len(strings.Fields(value)) >= 6 {
		s, err := ParseCron(value)
		if err != nil {
			return err.Error(), "use a Quartz cron expression (seconds minutes hours day-of-month month day-of-week), e.g. 0 0 * * * ?"
		}
		a := s.Next(now)
		if a.IsZero() {
			return fmt.Sprintf("cron %q never fires: no date matches it", value), "fix the day-of-month and month (e.g. February has no 30th), or use a duration such as 1 h"
		}
		for i := 0; i < cronSamples && floor > 0; i++ {
			b := s.Next(a)
			if b.IsZero() {
				break
			}
			if gap := b.Sub(a); gap < floor {
				return fmt.Sprintf("cron %q fires %s apart (at %s and %s), more often than the daemon allows (%s)",
					value, gap, a.Format(time.RFC3339), b.Format(time.RFC3339), floor), floorFix
			}
			a = b
		}
		return "", ""
	}
	d, ok := flinkDuration(value)
	if !ok || d == 0 || floor <= 0 || d >= floor {
		return "", ""
	}
	return fmt.Sprintf("interval %s is shorter than the daemon allows (%s)", value, floor), floorFix
}

// flinkDuration reads a value validDuration accepts.
func flinkDuration(s string) (time.Duration, bool) {
	if m := durationPattern.FindStringSubmatch(s); m != nil {
		n, err := strconv.ParseInt(m[1], 10, 64)
		if err != nil {
			return 0, false
		}
		unit := map[string]time.Duration{"": time.Millisecond, "ns": 1, "nano": 1, "nanos": 1, "nanosecond": 1, "nanoseconds": 1,
			"µs": time.Microsecond, "us": time.Microsecond, "micro": time.Microsecond, "micros": time.Microsecond, "microsecond": time.Microsecond, "microseconds": time.Microsecond,
			"ms": time.Millisecond, "milli": time.Millisecond, "millis": time.Millisecond, "millisecond": time.Millisecond, "milliseconds": time.Millisecond,
			"s": time.Second, "sec": time.Second, "secs": time.Second, "second": time.Second, "seconds": time.Second,
			"m": time.Minute, "min": time.Minute, "mins": time.Minute, "minute": time.Minute, "minutes": time.Minute,
			"h": time.Hour, "hour": time.Hour, "hours": time.Hour, "d": 24 * time.Hour, "day": 24 * time.Hour, "days": 24 * time.Hour}[strings.ToLower(m[2])]
		return time.Duration(n) * unit, true
	}
	if m := isoParts.FindStringSubmatch(strings.ToUpper(s)); m != nil && isoDurationPattern.MatchString(s) {
		var d time.Duration
		for i, u := range []time.Duration{24 * time.Hour, time.Hour, time.Minute} {
			if m[i+1] != "" {
				n, _ := strconv.ParseInt(m[i+1], 10, 64)
				d += time.Duration(n) * u
			}
		}
		if m[4] != "" {
			f, _ := strconv.ParseFloat(m[4], 64)
			d += time.Duration(f * float64(time.Second))
		}
		return d, true
	}
	return 0, false
}

var isoParts = regexp.MustCompile(`^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$`)
