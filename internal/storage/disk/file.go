package disk

import (
	"io"
	"io/fs"
	"os"
	"syscall"
)

// A file is a stored file opened by Get. On the cache-hit path every system
// call shows in the CPU a request costs, and the server asks an open file
// the same questions several times (the memory cache, the integrity guard
// and the response headers each call Stat; http.ServeContent finds the size
// with Seek(0, End) and Seek(0, Start)). A file answers them from the fstat
// Get made anyway: the content under a key never changes in place (Put
// renames a new file over it), so an open file's size and time are fixed.
//
// It embeds the *os.File, so it still offers SyscallConn and the kernel
// still sends it with sendfile(2).
type file struct {
	*os.File
	info fs.FileInfo
	// atEnd is a Seek(0, End) not yet made: the descriptor's offset is
	// still 0. Everything that reads moves it there first.
	atEnd bool
	// read reports that the offset may have moved from 0 (a read or a
	// real seek), after which seeks are real.
	read bool
}

// Stat returns the information of the fstat made when the file was opened.
func (f *file) Stat() (fs.FileInfo, error) { return f.info, nil }

// Seek answers the size probe of a file nothing has read yet (offset 0
// relative to the end or the start) without a system call; any other seek
// is real.
func (f *file) Seek(offset int64, whence int) (int64, error) {
	if !f.read && offset == 0 {
		switch whence {
		case io.SeekEnd:
			f.atEnd = true
			return f.info.Size(), nil
		case io.SeekStart:
			f.atEnd = false
			return 0, nil
		case io.SeekCurrent:
			if f.atEnd {
				return f.info.Size(), nil
			}
			return 0, nil
		}
	}
	if err := f.settle(); err != nil {
		return 0, err
	}
	return f.File.Seek(offset, whence)
}

// settle makes the descriptor's offset what Seek has told the caller, before
// anything uses the descriptor.
func (f *file) settle() error {
	f.read = true
	if !f.atEnd {
		return nil
	}
	f.atEnd = false
	_, err := f.File.Seek(0, io.SeekEnd)
	return err
}

func (f *file) Read(p []byte) (int, error) {
	if err := f.settle(); err != nil {
		return 0, err
	}
	return f.File.Read(p)
}

func (f *file) WriteTo(w io.Writer) (int64, error) {
	if err := f.settle(); err != nil {
		return 0, err
	}
	return f.File.WriteTo(w)
}

// SyscallConn is how sendfile(2) reaches the descriptor (net.TCPConn's
// ReadFrom), reading from its offset.
func (f *file) SyscallConn() (syscall.RawConn, error) {
	if err := f.settle(); err != nil {
		return nil, err
	}
	return f.File.SyscallConn()
}

// Fd returns the descriptor, its offset settled first.
func (f *file) Fd() uintptr {
	f.settle()
	return f.File.Fd()
}
