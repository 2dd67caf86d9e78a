package lifecycle

import (
	"strings"
	"testing"
	"time"
)

func TestParseFlinkDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"30s": 30 * time.Second, "1h30m": 90 * time.Minute, "500": 500 * time.Millisecond, "5 min": 5 * time.Minute,
		"1 h": time.Hour, "2d": 48 * time.Hour, "10 SECONDS": 10 * time.Second, "250us": 250 * time.Microsecond,
		"PT1H": time.Hour, "pt30m": 30 * time.Minute, "P1DT2H": 26 * time.Hour, "PT0.5S": 500 * time.Millisecond, "P2D": 48 * time.Hour,
	} {
		got, err := parseFlinkDuration(in)
		if err != nil || got != want {
			t.Errorf("parseFlinkDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "soon", "P", "PT", "1 fortnight", "P1Y"} {
		if d, err := parseFlinkDuration(in); err == nil {
			t.Errorf("parseFlinkDuration(%q) = %v, want an error", in, d)
		}
	}
}

func TestNextPeriodic(t *testing.T) {
	// Saturday 2026-11-28 10:15:00 UTC.
	last := time.Date(2026, 11, 28, 10, 15, 0, 0, time.UTC)
	cases := []struct {
		value string
		want  time.Time
	}{
		{"1h", last.Add(time.Hour)},
		{"PT10M", last.Add(10 * time.Minute)},
		{"0 0 * * * ?", time.Date(2026, 11, 28, 11, 0, 0, 0, time.UTC)},        // every full hour
		{"0 30 9 ? * MON-FRI", time.Date(2026, 11, 30, 9, 30, 0, 0, time.UTC)}, // next weekday 09:30: Monday
		{"0 0 12 ? * 2", time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)},       // Quartz 2 = Monday
		{"0 0 12 ? * 1", time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)},       // Quartz 1 = Sunday
		{"0 0 0/6 * * ? *", time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)},    // every 6 hours, year field *
		{"0 0 12 ? * 1/2", time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)},     // Sun, Tue, Thu, Sat: the step stays 2, so Saturday noon
	}
	for _, c := range cases {
		got, ok, err := nextPeriodic(c.value, last)
		if err != nil || !ok || !got.Equal(c.want) {
			t.Errorf("nextPeriodic(%q) = %v, %v, %v; want %v", c.value, got, ok, err, c.want)
		}
	}
	for _, off := range []string{"", "0", "0s"} {
		if _, ok, err := nextPeriodic(off, last); ok || err != nil {
			t.Errorf("nextPeriodic(%q): want off without error, got ok=%v err=%v", off, ok, err)
		}
	}
	for _, bad := range []string{"0 0 12 L * ?", "0 0 12 ? * 8", "0 0 12 * * ? 2027", "every day"} {
		if _, ok, err := nextPeriodic(bad, last); ok || err == nil {
			t.Errorf("nextPeriodic(%q): want an error, got ok=%v err=%v", bad, ok, err)
		}
	}
}

// TestPeriodicNeverAndFloor: a cron with no matching date is an error (not
// "due on every pass"), and the floor holds whatever the schedule says.
func TestPeriodicNeverAndFloor(t *testing.T) {
	last := time.Date(2026, 11, 28, 10, 15, 0, 0, time.UTC)
	if at, ok, err := nextPeriodic("0 0 0 30 2 ?", last); ok || err == nil || !strings.Contains(err.Error(), "never fires") {
		t.Errorf("0 0 0 30 2 ?: got %v, %v, %v; want never fires", at, ok, err)
	}
	for _, c := range []struct {
		value string
		floor time.Duration
		want  time.Time
	}{
		{"* * * * * ?", time.Minute, last.Add(time.Minute)},
		{"10s", time.Minute, last.Add(time.Minute)},
		{"1h", time.Minute, last.Add(time.Hour)},
		{"10s", 0, last.Add(10 * time.Second)},
	} {
		if at, ok, err := nextPeriodicFloor(c.value, last, c.floor); err != nil || !ok || !at.Equal(c.want) {
			t.Errorf("nextPeriodicFloor(%q, %s) = %v, %v, %v; want %v", c.value, c.floor, at, ok, err, c.want)
		}
	}
}
