// Package units parses the flag kinds of the workload catalogue (harness/workloads.py):
// sizes ("512MiB", "1.5GiB", "64KB", plain bytes), size lists and choices.
package units

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// The unit table: binary units are powers of 1024, decimal ones powers of 1000.
var sizeUnits = []struct {
	suffix string
	factor float64
}{
	// Longest suffixes first so "KiB" is not read as "B".
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
	{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12},
	{"B", 1},
}

const sizeHint = "want a size such as 4096, 8B, 64KiB, 512MiB, 1.5GiB (B, KiB, MiB, GiB, TiB; KB, MB, GB, TB are powers of 1000)"

// ParseSize returns the number of bytes s denotes. Units are matched case-insensitively.
func ParseSize(s string) (int64, error) {
	text := strings.TrimSpace(s)
	if text == "" {
		return 0, fmt.Errorf("empty size: %s", sizeHint)
	}
	factor := 1.0
	number := text
	for _, u := range sizeUnits {
		if len(text) > len(u.suffix) && strings.EqualFold(text[len(text)-len(u.suffix):], u.suffix) {
			factor = u.factor
			number = strings.TrimSpace(text[:len(text)-len(u.suffix)])
			break
		}
	}
	if factor == 1 {
		// Plain bytes (or "NB") must be a whole number.
		n, err := strconv.ParseInt(number, 10, 64)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("invalid size %q: %s", s, sizeHint)
		}
		return n, nil
	}
	f, err := strconv.ParseFloat(number, 64)
	if err != nil || f < 0 || math.IsInf(f, 0) || math.IsNaN(f) {
		return 0, fmt.Errorf("invalid size %q: %s", s, sizeHint)
	}
	bytes := f * factor
	if bytes > math.MaxInt64/2 {
		return 0, fmt.Errorf("size %q is too large", s)
	}
	return int64(math.Round(bytes)), nil
}

// Size is a flag.Value holding a byte count; String returns the text it was set from,
// so `-h` shows the catalogue's default spelling.
type Size struct {
	Bytes int64
	text  string
}

// NewSize returns a Size set to def; def must be valid (it is a compile-time default).
func NewSize(def string) *Size {
	s := &Size{}
	if err := s.Set(def); err != nil {
		panic(err)
	}
	return s
}

func (s *Size) Set(v string) error {
	n, err := ParseSize(v)
	if err != nil {
		return err
	}
	s.Bytes, s.text = n, strings.TrimSpace(v)
	return nil
}

func (s *Size) String() string {
	if s == nil {
		return "0"
	}
	if s.text == "" {
		return strconv.FormatInt(s.Bytes, 10)
	}
	return s.text
}

// Sizes is a comma-separated list of sizes, e.g. "8B,16B,32KiB".
type Sizes struct {
	Bytes []int64
	Texts []string
}

func NewSizes(def string) *Sizes {
	s := &Sizes{}
	if err := s.Set(def); err != nil {
		panic(err)
	}
	return s
}

func (s *Sizes) Set(v string) error {
	var bytes []int64
	var texts []string
	for _, part := range strings.Split(v, ",") {
		part = strings.TrimSpace(part)
		n, err := ParseSize(part)
		if err != nil {
			return fmt.Errorf("in list %q: %v", v, err)
		}
		if n <= 0 {
			return fmt.Errorf("in list %q: size %q must be at least 1 byte", v, part)
		}
		bytes = append(bytes, n)
		texts = append(texts, part)
	}
	s.Bytes, s.Texts = bytes, texts
	return nil
}

func (s *Sizes) String() string {
	if s == nil {
		return ""
	}
	return strings.Join(s.Texts, ",")
}

// Choice is a string restricted to a fixed set of values.
type Choice struct {
	Value   string
	Choices []string
}

func NewChoice(def string, choices ...string) *Choice {
	c := &Choice{Choices: choices}
	if err := c.Set(def); err != nil {
		panic(err)
	}
	return c
}

func (c *Choice) Set(v string) error {
	for _, ok := range c.Choices {
		if v == ok {
			c.Value = v
			return nil
		}
	}
	return fmt.Errorf("invalid choice %q: want one of %s", v, strings.Join(c.Choices, ", "))
}

func (c *Choice) String() string {
	if c == nil {
		return ""
	}
	return c.Value
}
