package units

import (
	"flag"
	"io/ioutil"
	"strings"
	"testing"
)

func TestParseSize(t *testing.T) {
	cases := []struct {
		in   string
		want int64
	}{
		{"0", 0}, {"4096", 4096}, {"8B", 8}, {"15b", 15}, {"64KiB", 64 << 10}, {"33kib", 33 << 10},
		{"512MiB", 512 << 20}, {"1GiB", 1 << 30}, {"1.5GiB", 3 << 29}, {"64KB", 64000},
		{"2MB", 2000000}, {"1GB", 1000000000}, {" 4 MiB ", 4 << 20},
	}
	for _, c := range cases {
		got, err := ParseSize(c.in)
		if err != nil || got != c.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", c.in, got, err, c.want)
		}
	}
	for _, bad := range []string{"", "MiB", "-1", "1.5", "1.5B", "12XB", "1e400GiB", "abc", "-3KiB"} {
		if _, err := ParseSize(bad); err == nil {
			t.Errorf("ParseSize(%q) succeeded; want an error", bad)
		} else if bad != "" && bad != "1e400GiB" && !strings.Contains(err.Error(), "want a size") {
			t.Errorf("ParseSize(%q) error %q does not say what is valid", bad, err)
		}
	}
}

func TestFlagValues(t *testing.T) {
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	fs.SetOutput(ioutil.Discard)
	size := NewSize("1GiB")
	sizes := NewSizes("8B")
	choice := NewChoice("mmap", "mmap", "heap")
	fs.Var(size, "size", "")
	fs.Var(sizes, "sizes", "")
	fs.Var(choice, "via", "")
	if size.Bytes != 1<<30 || size.String() != "1GiB" {
		t.Fatalf("default size = %d %q", size.Bytes, size.String())
	}
	if err := fs.Parse([]string{"--size=256MiB", "--sizes=8B,16B,32KiB", "--via=heap"}); err != nil {
		t.Fatal(err)
	}
	if size.Bytes != 256<<20 || size.String() != "256MiB" {
		t.Errorf("size = %d %q", size.Bytes, size)
	}
	if len(sizes.Bytes) != 3 || sizes.Bytes[2] != 32<<10 || sizes.String() != "8B,16B,32KiB" {
		t.Errorf("sizes = %v %q", sizes.Bytes, sizes)
	}
	if choice.Value != "heap" {
		t.Errorf("choice = %q", choice.Value)
	}
	if err := fs.Parse([]string{"--via=disk"}); err == nil || !strings.Contains(err.Error(), "mmap, heap") {
		t.Errorf("bad choice error = %v; want the valid choices named", err)
	}
	if err := fs.Parse([]string{"--sizes=8B,0"}); err == nil {
		t.Errorf("a zero size in a list was accepted")
	}
}
