package main

import (
	"bytes"
	"fmt"
	"io/ioutil"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"unsafe"

	"goreclaim/workloads/internal/wltest"
)

func TestMain(m *testing.M) {
	wltest.MaybeChild(run)
	os.Exit(m.Run())
}

const mib = 1 << 20

// rssAt runs alloc-release and records the child's VmRSS when each phase starts.
func rssAt(t *testing.T, args []string) (*wltest.Result, map[string]int64) {
	rss := map[string]int64{}
	res := wltest.Run(t, args, func(pid int, l wltest.Line) {
		if l.Ev != "phase" {
			return
		}
		kib, err := wltest.ProcStatusKiB(pid, "VmRSS")
		if err != nil {
			t.Errorf("reading the child's VmRSS: %v", err)
		}
		rss[l.Fields["name"].(string)] = kib * 1024
	})
	return res, rss
}

func TestTouchedSpikeIsResidentAndInHeap(t *testing.T) {
	res, rss := rssAt(t, []string{"--size=256MiB", "--touch=true", "--baseline=100ms", "--hold=300ms",
		"--idle=200ms", "--freeos=true", "--metrics-interval=50ms"})
	wltest.CheckProtocol(t, res, "alloc-release", []string{"baseline", "allocate", "hold", "release", "freeos", "idle"})
	inuse := res.MetricBefore(t, "release", "heap_inuse")
	if inuse < 250*mib || inuse > 270*mib {
		t.Errorf("heap_inuse during hold = %.0f MiB; want about 256", inuse/mib)
	}
	if grown := rss["hold"] - rss["allocate"]; grown < 240*mib {
		t.Errorf("VmRSS grew by %d MiB while touching 256 MiB", grown/mib)
	}
	if after := res.MetricBefore(t, "idle", "heap_inuse"); after > 32*mib {
		t.Errorf("heap_inuse after release and FreeOSMemory = %.0f MiB", after/mib)
	}
	if len(res.Of("freeos")) != 1 {
		t.Errorf("want one freeos line, got %d", len(res.Of("freeos")))
	}
}

func TestArticleSnippetNeverBecomesResident(t *testing.T) {
	res, rss := rssAt(t, []string{"--size=256MiB", "--touch=false", "--baseline=50ms", "--hold=200ms",
		"--idle=100ms", "--gcs=0", "--metrics-interval=50ms"})
	wltest.CheckProtocol(t, res, "alloc-release", []string{"baseline", "allocate", "hold", "release", "idle"})
	if inuse := res.MetricBefore(t, "release", "heap_inuse"); inuse < 250*mib {
		t.Errorf("heap_inuse during hold = %.0f MiB; the untouched slice still counts as in use", inuse/mib)
	}
	if rss["release"] > 64*mib {
		t.Errorf("VmRSS during hold = %d MiB; an untouched 256 MiB slice should not be resident", rss["release"]/mib)
	}
}

func TestLivePhaseAndSpacedGCs(t *testing.T) {
	res, _ := rssAt(t, []string{"--size=16MiB", "--live=8MiB", "--baseline=20ms", "--hold=20ms",
		"--idle=50ms", "--gcs=3", "--gc-interval=30ms", "--metrics-interval=1s"})
	wltest.CheckProtocol(t, res, "alloc-release", []string{"baseline", "live", "allocate", "hold", "release", "idle"})
	before := res.MetricBefore(t, "release", "num_gc")
	after := res.MetricBefore(t, "idle", "num_gc")
	if after-before < 3 {
		t.Errorf("num_gc rose by %.0f during release; want at least 3", after-before)
	}
	if live := res.MetricBefore(t, "idle", "heap_inuse"); live < 8*mib {
		t.Errorf("heap_inuse after release = %.0f MiB; the 8 MiB live set must survive", live/mib)
	}
}

// cachedBytes counts the bytes of a file that are in the page cache (mincore on a mapping).
func cachedBytes(t *testing.T, path string) int64 {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || st.Size() == 0 {
		t.Fatalf("page-cache file %s: %v, %d bytes", path, err, st.Size())
	}
	mem, err := syscall.Mmap(int(f.Fd()), 0, int(st.Size()), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Munmap(mem)
	vec := make([]byte, (len(mem)+pageSize-1)/pageSize)
	if _, _, e := syscall.Syscall(syscall.SYS_MINCORE, uintptr(unsafe.Pointer(&mem[0])), uintptr(len(mem)),
		uintptr(unsafe.Pointer(&vec[0]))); e != 0 {
		t.Fatal(e)
	}
	var n int64
	for _, v := range vec {
		n += int64(v & 1)
	}
	return n * pageSize
}

func TestPageCacheIsCachedNotResident(t *testing.T) {
	dir := t.TempDir()
	var cached, rssBefore, rssAfter int64
	res := wltest.Run(t, []string{"--size=16MiB", "--page-cache=64MiB", "--cache-dir=" + dir, "--baseline=20ms",
		"--hold=20ms", "--idle=20ms", "--metrics-interval=1s"}, func(pid int, l wltest.Line) {
		if l.Ev != "phase" {
			return
		}
		switch l.Fields["name"] {
		case "pagecache":
			rssBefore, _ = wltest.ProcStatusKiB(pid, "VmRSS")
		case "allocate":
			rssAfter, _ = wltest.ProcStatusKiB(pid, "VmRSS")
			files, _ := filepath.Glob(filepath.Join(dir, "goreclaim-pagecache-*"))
			if len(files) != 1 {
				t.Errorf("page-cache files during the run: %v", files)
				return
			}
			cached = cachedBytes(t, files[0])
		}
	})
	wltest.CheckProtocol(t, res, "alloc-release", []string{"baseline", "pagecache", "allocate", "hold", "release", "idle"})
	end := res.Lines[len(res.Lines)-1]
	if got := end.Num(t, "totals", "page_cache_bytes"); got != 64*mib {
		t.Errorf("page_cache_bytes = %v; want 64 MiB", got)
	}
	if fs, _ := end.Fields["totals"].(map[string]interface{})["page_cache_fs"].(string); fs == "" {
		t.Errorf("no page_cache_fs in %s", end.Raw)
	}
	if cached < 60*mib {
		t.Errorf("%d MiB of the 64 MiB file in the page cache after the phase", cached/mib)
	}
	if grown := (rssAfter - rssBefore) * 1024; grown > 8*mib {
		t.Errorf("VmRSS grew by %d MiB while writing and reading 64 MiB of file", grown/mib)
	}
	if left, _ := ioutil.ReadDir(dir); len(left) != 0 {
		t.Errorf("the page-cache file was left behind: %v", left[0].Name())
	}
}

func TestUnwritableCacheDirFailsBeforeAnyOutput(t *testing.T) {
	var out bytes.Buffer
	err := run([]string{"--page-cache=1MiB", "--cache-dir=/nonexistent/goreclaim"}, &out)
	if err == nil || !strings.Contains(err.Error(), "--cache-dir /nonexistent/goreclaim") {
		t.Errorf("error = %v; want one naming --cache-dir", err)
	}
	if out.Len() != 0 {
		t.Errorf("telemetry written before the error: %s", out.String())
	}
}

func TestBadFlagIsRejected(t *testing.T) {
	if err := run([]string{"--size=12XB"}, os.Stdout); err == nil {
		t.Fatal("--size=12XB accepted")
	}
}

// The heap profile lands in $TMPDIR after the release GC, named by a heapprofile line, and holds
// the live set but not the dropped spike (a gzipped profile.proto; the harness decodes it).
func TestHeapProfileIsWrittenAfterTheReleaseGC(t *testing.T) {
	dir := t.TempDir()
	old := os.Getenv("TMPDIR")
	os.Setenv("TMPDIR", dir)
	defer os.Setenv("TMPDIR", old)
	res := wltest.Run(t, []string{"--size=64MiB", "--live=8MiB", "--heap-profile", "--baseline=10ms", "--hold=10ms",
		"--idle=10ms"}, nil)
	lines := res.Of("heapprofile")
	if len(lines) != 1 || lines[0].Fields["phase"] != "release" || lines[0].Fields["file"] != "heap-release.pb.gz" {
		t.Fatalf("want one heapprofile line for release naming heap-release.pb.gz, got %v", lines)
	}
	raw, err := ioutil.ReadFile(filepath.Join(dir, "heap-release.pb.gz"))
	if err != nil {
		t.Fatal(err)
	}
	if len(raw) < 2 || raw[0] != 0x1f || raw[1] != 0x8b || fmt.Sprint(len(raw)) != fmt.Sprint(lines[0].Fields["bytes"]) {
		t.Errorf("want a gzip file of %v bytes, got %d bytes starting % x", lines[0].Fields["bytes"], len(raw), raw[:2])
	}
}
