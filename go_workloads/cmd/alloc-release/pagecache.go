package main

import (
	"fmt"
	"io"
	"io/ioutil"
	"os"
	"os/signal"
	"syscall"
)

// pageCache is a file written, synced and read back, so its pages sit in the kernel's page
// cache: charged to the cgroup's memory usage (memory.current, usage_in_bytes) but never
// part of the process's RSS, which is what claim C12 is about.
type pageCache struct {
	f     *os.File
	bytes int64
	fs    string
	sigs  chan os.Signal
}

// Filesystem magic numbers (statfs f_type, <linux/magic.h>) worth naming in the totals:
// on tmpfs the "page cache" is shmem, which without swap cannot be reclaimed.
var fsNames = map[int64]string{
	0x01021994: "tmpfs", 0x794c7630: "overlay", 0xef53: "ext4", 0x58465342: "xfs",
	0x9123683e: "btrfs", 0x6969: "nfs", 0x65735546: "fuse",
}

// newPageCache creates the (empty) file in dir, so an unwritable directory fails before any
// telemetry is written. The file is removed by close, or on SIGTERM/SIGINT before the
// signal is re-raised; a SIGKILL (the OOM killer) leaves it to the container's removal.
func newPageCache(dir string) (*pageCache, error) {
	if dir == "" {
		dir = os.TempDir() // $TMPDIR, else /tmp
	}
	f, err := ioutil.TempFile(dir, "goreclaim-pagecache-")
	if err != nil {
		return nil, fmt.Errorf("--cache-dir %s: cannot create the page-cache file: %v "+
			"(--page-cache needs a writable directory on a real filesystem)", dir, err)
	}
	p := &pageCache{f: f, fs: "unknown", sigs: make(chan os.Signal, 1)}
	var st syscall.Statfs_t
	if syscall.Fstatfs(int(f.Fd()), &st) == nil {
		if name, ok := fsNames[int64(st.Type)]; ok {
			p.fs = name
		} else {
			p.fs = fmt.Sprintf("0x%x", st.Type)
		}
	}
	signal.Notify(p.sigs, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		s, ok := <-p.sigs
		if !ok {
			return
		}
		os.Remove(f.Name())
		signal.Reset(s)
		syscall.Kill(os.Getpid(), s.(syscall.Signal))
	}()
	return p, nil
}

// fill writes size bytes, fsyncs (the pages stay cached, now clean) and reads the whole file
// back through a small buffer, so the heap barely changes.
func (p *pageCache) fill(size int64) error {
	buf := make([]byte, 256<<10)
	for i := range buf {
		buf[i] = byte(i) | 1 // no zero pages a filesystem could store sparsely
	}
	for p.bytes < size {
		n := int64(len(buf))
		if size-p.bytes < n {
			n = size - p.bytes
		}
		w, err := p.f.Write(buf[:n])
		p.bytes += int64(w)
		if err != nil {
			return fmt.Errorf("writing the page-cache file %s: %v", p.f.Name(), err)
		}
	}
	if err := p.f.Sync(); err != nil {
		return fmt.Errorf("fsync of the page-cache file %s: %v", p.f.Name(), err)
	}
	if _, err := p.f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	var read int64
	for {
		n, err := p.f.Read(buf)
		read += int64(n)
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("reading back the page-cache file %s: %v", p.f.Name(), err)
		}
	}
	if read != p.bytes {
		return fmt.Errorf("read back %d of the %d bytes written to %s", read, p.bytes, p.f.Name())
	}
	return nil
}

func (p *pageCache) close() {
	signal.Stop(p.sigs)
	close(p.sigs)
	p.f.Close()
	os.Remove(p.f.Name())
}
