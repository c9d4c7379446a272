package profiles

import (
	"strings"
	"testing"
	"time"
)

func TestParseSize(t *testing.T) {
	for _, c := range []struct {
		in   string
		want uint64
		err  string
	}{
		{"4GiB", 4 << 30, ""},
		{"512MiB", 512 << 20, ""},
		{"60G", 60 << 30, ""},
		{"60g", 60 << 30, ""},
		{"1.5GiB", 3 << 29, ""},
		{"100GB", 100e9, ""},
		{"2 TiB", 2 << 40, ""},
		{"4096B", 4096, ""},
		{"1K", 1024, ""},
		{"1kb", 1000, ""},
		{"0B", 0, ""},
		{"", 0, "empty size"},
		{"4096", 0, "has no unit"},
		{"4 gigs", 0, "unknown unit"},
		{"-1GiB", 0, "negative"},
		{"GiB", 0, "does not start with a number"},
		{"1.2.3GiB", 0, "does not start with a number"},
		{"0.1B", 0, "whole number of bytes"},
		{"99999999999999TiB", 0, "too large"},
		{"16EiB", 0, "unknown unit"},
	} {
		got, err := ParseSize(c.in)
		switch {
		case c.err == "" && err != nil:
			t.Errorf("ParseSize(%q): %v", c.in, err)
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("ParseSize(%q) error = %v, want %q", c.in, err, c.err)
		case c.err == "" && got != c.want:
			t.Errorf("ParseSize(%q) = %d, want %d", c.in, got, c.want)
		}
	}
}

func TestFormatSize(t *testing.T) {
	for in, want := range map[uint64]string{4 << 30: "4GiB", 1536 << 20: "1536MiB", 1000: "1000B", 2 << 40: "2TiB"} {
		if got := FormatSize(in); got != want {
			t.Errorf("FormatSize(%d) = %q, want %q", in, got, want)
		}
		if back, err := ParseSize(FormatSize(in)); err != nil || back != in {
			t.Errorf("ParseSize(FormatSize(%d)) = %d, %v", in, back, err)
		}
	}
}

func TestParseDuration(t *testing.T) {
	day := 24 * time.Hour
	for _, c := range []struct {
		in   string
		want time.Duration
		err  string
	}{
		{"30d", 30 * day, ""},
		{"12h", 12 * time.Hour, ""},
		{"90m", 90 * time.Minute, ""},
		{"2w", 14 * day, ""},
		{"45s", 45 * time.Second, ""},
		{"1d12h", 36 * time.Hour, ""},
		{"0d", 0, ""},
		{"", 0, "empty"},
		{"30", 0, "no unit"},
		{"30 days", 0, "contains a space"},
		{"30x", 0, "unknown unit"},
		{"-1d", 0, "negative"},
		{"d", 0, "not a number"},
		{"1.5h", 0, "unknown unit"},
		{"99999999999w", 0, "too long"},
		{"9999999999999999999d", 0, "too long"},
	} {
		got, err := ParseDuration(c.in)
		switch {
		case c.err == "" && err != nil:
			t.Errorf("ParseDuration(%q): %v", c.in, err)
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("ParseDuration(%q) error = %v, want %q", c.in, err, c.err)
		case c.err == "" && got != c.want:
			t.Errorf("ParseDuration(%q) = %v, want %v", c.in, got, c.want)
		}
	}
}

func TestParseSchedule(t *testing.T) {
	from := time.Date(2026, 3, 10, 12, 0, 0, 0, time.Local)
	for _, c := range []struct {
		in   string
		next time.Time
		err  string
	}{
		{"@daily", time.Date(2026, 3, 11, 0, 0, 0, 0, time.Local), ""},
		{"@hourly", time.Date(2026, 3, 10, 13, 0, 0, 0, time.Local), ""},
		{"@weekly", time.Date(2026, 3, 15, 0, 0, 0, 0, time.Local), ""},
		{"@monthly", time.Date(2026, 4, 1, 0, 0, 0, 0, time.Local), ""},
		{"30 2 * * *", time.Date(2026, 3, 11, 2, 30, 0, 0, time.Local), ""},
		{"0 */6 * * 1-5", time.Date(2026, 3, 10, 18, 0, 0, 0, time.Local), ""},
		{"", time.Time{}, "empty"},
		{"@every 1h", time.Time{}, "@every is not supported"},
		{"CRON_TZ=UTC @daily", time.Time{}, "time zone"},
		{"0 0 * * * *", time.Time{}, "five fields"},
		{"61 * * * *", time.Time{}, "above maximum"},
		{"@sometimes", time.Time{}, "unrecognized descriptor"},
	} {
		s, err := ParseSchedule(c.in)
		switch {
		case c.err == "" && err != nil:
			t.Errorf("ParseSchedule(%q): %v", c.in, err)
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("ParseSchedule(%q) error = %v, want %q", c.in, err, c.err)
		case c.err == "" && !s.Next(from).Equal(c.next):
			t.Errorf("ParseSchedule(%q).Next = %v, want %v", c.in, s.Next(from), c.next)
		}
	}
}

func TestNames(t *testing.T) {
	for _, c := range []struct {
		name string
		max  int
		ok   bool
	}{
		{"acct-lab", 11, true},
		{"a", 11, true},
		{"acct-lab-1", 11, true},
		{"twelve-chars", 11, false},
		{"Acct", 50, false},
		{"1acct", 50, false},
		{"acct-", 50, false},
		{"ac--ct", 50, false},
		{"ac_ct", 50, false},
		{"", 50, false},
	} {
		if err := CheckName(c.name, c.max); (err == nil) != c.ok {
			t.Errorf("CheckName(%q, %d) = %v, want ok=%v", c.name, c.max, err, c.ok)
		}
	}
	for _, c := range []struct {
		name string
		ok   bool
	}{
		{"ACCT-1", true}, {"*", true}, {"a", true}, {"123456789012345", false}, {"ABCDEFGHIJKLMNOP", false},
		{"-ACCT", false}, {"ACCT-", false}, {"AC_CT", false}, {"AC CT", false}, {"", false}, {"1-2", true},
	} {
		if err := CheckComputerName(c.name); (err == nil) != c.ok {
			t.Errorf("CheckComputerName(%q) = %v, want ok=%v", c.name, err, c.ok)
		}
	}
	for _, c := range []struct {
		vm      string
		index   int
		counted bool
		want    string
	}{
		{"acct", 1, false, "ACCT"},
		{"acct", 2, true, "ACCT-2"},
		{"a-very-long-vm-name", 12, true, "A-VERY-LONG-12"},
		{"exactly-fifteen", 1, false, "EXACTLY-FIFTEEN"},
	} {
		got := defaultComputerName(c.vm, c.index, c.counted)
		if got != c.want || CheckComputerName(got) != nil {
			t.Errorf("defaultComputerName(%q, %d, %v) = %q, want %q", c.vm, c.index, c.counted, got, c.want)
		}
	}
	for in, want := range map[string]string{"Acct Lab": "acct-lab", "My_Profiles": "my-profiles", "123": ""} {
		if got := suggestName(in); got != want {
			t.Errorf("suggestName(%q) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[string]PortRange{"3389": {3389, 3389}, "1000-2000": {1000, 2000}, " 5 - 6 ": {5, 6}} {
		if got, err := ParsePortRange(in); err != nil || got != want {
			t.Errorf("ParsePortRange(%q) = %v, %v", in, got, err)
		}
	}
	for _, in := range []string{"0", "70000", "2-1", "a-b", ""} {
		if _, err := ParsePortRange(in); err == nil {
			t.Errorf("ParsePortRange(%q) accepted", in)
		}
	}
}
