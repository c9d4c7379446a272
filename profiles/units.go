package profiles

import (
	"fmt"
	"math"
	"math/big"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// sizeUnits maps a size suffix (compared case-insensitively) to its number
// of bytes. Single letters are binary like qemu-img and libvirt (G = GiB);
// "KB", "MB", "GB", "TB" are decimal.
var sizeUnits = map[string]uint64{
	"b":   1,
	"k":   1 << 10,
	"kib": 1 << 10,
	"kb":  1000,
	"m":   1 << 20,
	"mib": 1 << 20,
	"mb":  1000 * 1000,
	"g":   1 << 30,
	"gib": 1 << 30,
	"gb":  1000 * 1000 * 1000,
	"t":   1 << 40,
	"tib": 1 << 40,
	"tb":  1000 * 1000 * 1000 * 1000,
}

// ParseSize parses a size with a unit, such as "4GiB", "512MiB", "60G",
// "1.5GiB" or "100GB", into bytes. Binary units are KiB, MiB, GiB, TiB and
// their one-letter forms K, M, G, T; KB, MB, GB and TB are decimal; B is
// bytes. Units are case-insensitive and may be separated from the number
// by a space. A unit is required. The result must be a whole number of
// bytes that fits in a uint64. Validation and runtime both use this parser.
func ParseSize(s string) (uint64, error) {
	t := strings.TrimSpace(s)
	if t == "" {
		return 0, fmt.Errorf("empty size: write a number and a unit, like \"4GiB\"")
	}
	i := 0
	for i < len(t) && (t[i] >= '0' && t[i] <= '9' || t[i] == '.') {
		i++
	}
	num, unit := t[:i], strings.ToLower(strings.TrimSpace(t[i:]))
	if num == "" || strings.Count(num, ".") > 1 || strings.HasPrefix(num, ".") || strings.HasSuffix(num, ".") {
		if strings.HasPrefix(t, "-") {
			return 0, fmt.Errorf("size %q is negative", s)
		}
		return 0, fmt.Errorf("size %q does not start with a number: write it like \"4GiB\" or \"512MiB\"", s)
	}
	if unit == "" {
		return 0, fmt.Errorf("size %q has no unit: write %q (binary units KiB, MiB, GiB, TiB, or K, M, G, T) or %q (decimal units KB, MB, GB, TB)", s, num+"GiB", num+"GB")
	}
	mult, ok := sizeUnits[unit]
	if !ok {
		return 0, fmt.Errorf("size %q has an unknown unit %q: use B, KiB, MiB, GiB or TiB (K, M, G, T mean the same), or decimal KB, MB, GB, TB", s, t[i:])
	}
	if len(num) > 40 {
		return 0, fmt.Errorf("size %q is too large", s)
	}
	r, ok := new(big.Rat).SetString(num)
	if !ok {
		return 0, fmt.Errorf("size %q does not start with a number", s)
	}
	r.Mul(r, new(big.Rat).SetUint64(mult))
	if !r.IsInt() {
		return 0, fmt.Errorf("size %q is not a whole number of bytes", s)
	}
	n := r.Num()
	if !n.IsUint64() {
		return 0, fmt.Errorf("size %q is too large", s)
	}
	return n.Uint64(), nil
}

// SizeIsDecimal reports whether a size is written with a decimal unit (KB,
// MB, GB, TB), which is never what memory means. It does not check the
// number: use ParseSize for that.
func SizeIsDecimal(s string) bool {
	u := strings.ToLower(strings.TrimSpace(strings.TrimLeft(strings.TrimSpace(s), "0123456789.")))
	return u == "kb" || u == "mb" || u == "gb" || u == "tb"
}

// binaryUnit rewrites a decimal size as the binary one people mean
// ("4GB" -> "4GiB").
func binaryUnit(s string) string {
	t := strings.TrimSpace(s)
	num := strings.TrimSpace(strings.TrimRight(t, "kKmMgGtTbB "))
	u := strings.ToUpper(strings.TrimSpace(t[len(num):]))
	return num + u[:1] + "iB"
}

// FormatSize renders bytes the way a profile would write them, using the
// largest binary unit that divides the value exactly ("4GiB", "1536MiB").
func FormatSize(b uint64) string {
	units := []struct {
		name string
		n    uint64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}}
	for _, u := range units {
		if b >= u.n && b%u.n == 0 {
			return fmt.Sprintf("%d%s", b/u.n, u.name)
		}
	}
	return fmt.Sprintf("%dB", b)
}

var durationUnits = map[byte]time.Duration{
	's': time.Second,
	'm': time.Minute,
	'h': time.Hour,
	'd': 24 * time.Hour,
	'w': 7 * 24 * time.Hour,
}

// ParseDuration parses durations such as "30d", "12h", "90m", "2w", "45s"
// or combinations like "1d12h". Units: s, m (minutes), h, d (24 hours),
// w (7 days); each number is a whole number. Negative durations are
// rejected. Validation and runtime both use this parser.
func ParseDuration(s string) (time.Duration, error) {
	t := strings.TrimSpace(s)
	if t == "" {
		return 0, fmt.Errorf("empty duration: write a number and a unit, like \"30d\" or \"12h\"")
	}
	if strings.HasPrefix(t, "-") {
		return 0, fmt.Errorf("duration %q is negative", s)
	}
	if strings.ContainsAny(t, " \t") {
		return 0, fmt.Errorf("duration %q contains a space: write the number and unit together, like \"30d\" (d for days, w for weeks, h for hours, m for minutes)", s)
	}
	var total time.Duration
	for len(t) > 0 {
		i := 0
		for i < len(t) && t[i] >= '0' && t[i] <= '9' {
			i++
		}
		if i == 0 {
			return 0, fmt.Errorf("duration %q is not a number followed by a unit: write it like \"30d\", \"12h\", \"90m\" or \"2w\"", s)
		}
		if i == len(t) {
			return 0, fmt.Errorf("duration %q has no unit after %s: use s, m, h, d or w, like %q", s, t, t+"d")
		}
		unit, ok := durationUnits[t[i]]
		if !ok {
			return 0, fmt.Errorf("duration %q has an unknown unit %q: use s (seconds), m (minutes), h (hours), d (days) or w (weeks)", s, string(t[i]))
		}
		if i > 12 {
			return 0, fmt.Errorf("duration %q is too long", s)
		}
		var n int64
		for _, c := range t[:i] {
			n = n*10 + int64(c-'0')
		}
		if n > int64(math.MaxInt64/unit) || total > math.MaxInt64-time.Duration(n)*unit {
			return 0, fmt.Errorf("duration %q is too long", s)
		}
		total += time.Duration(n) * unit
		t = t[i+1:]
	}
	return total, nil
}

// scheduleParser accepts the standard five cron fields (minute, hour, day
// of month, month, day of week) and descriptors such as @daily.
var scheduleParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// ParseSchedule parses a snapshot schedule: a standard five-field cron
// expression ("30 2 * * *") or one of @hourly, @daily, @weekly, @monthly
// (also @midnight, @yearly, @annually). "@every" is not accepted: schedules
// are calendar based so that they can be jittered per VM. Times are the
// host's local time. The scheduler uses this same parser.
func ParseSchedule(s string) (cron.Schedule, error) {
	t := strings.TrimSpace(s)
	if t == "" {
		return nil, fmt.Errorf("empty schedule: write a cron expression like \"30 2 * * *\" or @daily")
	}
	if strings.HasPrefix(t, "@every") {
		return nil, fmt.Errorf("@every is not supported: use a cron expression (\"0 */6 * * *\" is every six hours) or @hourly, @daily, @weekly, @monthly")
	}
	if strings.HasPrefix(t, "TZ=") || strings.HasPrefix(t, "CRON_TZ=") {
		return nil, fmt.Errorf("time zone prefixes are not supported: schedules run in the host's local time")
	}
	sched, err := scheduleParser.Parse(t)
	if err != nil {
		return nil, fmt.Errorf("%v: write five fields (minute hour day-of-month month day-of-week), like \"30 2 * * *\", or @hourly, @daily, @weekly, @monthly", err)
	}
	// The cron library returns the zero time for a date that never comes
	// (February 31st); a schedule that never fires is a mistake.
	if sched.Next(time.Now()).IsZero() {
		return nil, fmt.Errorf("it never matches (no such day in any year: day-of-month and month together name a date that does not exist); check the day-of-month and month fields, like \"0 0 28 2 *\" for February 28th")
	}
	return sched, nil
}

// WindowApplies reports whether a schedule is jittered by time of day, so
// that a window can bound it: @daily (@midnight), @weekly and @monthly.
func WindowApplies(schedule string) bool {
	switch strings.TrimSpace(schedule) {
	case "@daily", "@midnight", "@weekly", "@monthly":
		return true
	}
	return false
}

// DefaultWindow is the window the jitter of @daily, @weekly and @monthly
// snapshots falls in when a policy sets none: night hours, host local time,
// so that a memory snapshot does not pause a VM in the middle of the day.
const DefaultWindow = "01:00-05:00"

// ParseWindow parses a time-of-day window "HH:MM-HH:MM" (host local time)
// into minutes after midnight. The end is exclusive; a window that ends
// before it starts runs over midnight ("22:00-04:00"). It must be at least
// one minute long.
func ParseWindow(s string) (start, length int, err error) {
	a, b, ok := strings.Cut(strings.TrimSpace(s), "-")
	if !ok {
		return 0, 0, fmt.Errorf("window %q is not a time range: write it like \"01:00-05:00\" (host local time)", s)
	}
	var hm [2]int
	for i, part := range []string{a, b} {
		t, err := time.Parse("15:04", strings.TrimSpace(part))
		if err != nil {
			return 0, 0, fmt.Errorf("window %q: %q is not a time of day like \"01:00\" (24-hour clock)", s, strings.TrimSpace(part))
		}
		hm[i] = t.Hour()*60 + t.Minute()
	}
	length = (hm[1] - hm[0] + 1440) % 1440
	if length == 0 {
		return 0, 0, fmt.Errorf("window %q is empty: its end must differ from its start", s)
	}
	return hm[0], length, nil
}
