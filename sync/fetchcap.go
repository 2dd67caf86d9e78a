package sync

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/format/packfile"
	"github.com/go-git/go-git/v5/storage/memory"
)

// errFetchTooLarge marks a fetch refused because its pack, or the objects
// the pack inflates to, exceed the cap.
var errFetchTooLarge = errors.New("fetch too large")

// cappedStorage is in-memory Git storage that takes a fetched pack as a
// whole (it is a storer.PackfileWriter, so go-git hands it the raw pack
// instead of inflating objects into memory one by one) and refuses it
// while it arrives when it grows past max bytes, and before a single
// object is inflated when the sizes its objects declare add up to more
// than max. A 200 MiB file of zeros compresses to a pack of a few hundred
// KiB: the pack's own size says nothing, its objects' sizes do.
type cappedStorage struct {
	*memory.Storage
	max int64
}

func newCappedStorage(max int64) *cappedStorage {
	return &cappedStorage{Storage: memory.NewStorage(), max: max}
}

// PackfileWriter implements storer.PackfileWriter.
func (s *cappedStorage) PackfileWriter() (io.WriteCloser, error) {
	return &packWriter{s: s}, nil
}

// packWriter buffers a pack up to the cap and, on Close, checks the
// inflated sizes and then stores its objects.
type packWriter struct {
	s   *cappedStorage
	buf bytes.Buffer
	err error
}

func (w *packWriter) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	if int64(w.buf.Len()+len(p)) > w.s.max {
		w.err = fmt.Errorf("%w: the pack is larger than %d bytes", errFetchTooLarge, w.s.max)
		return 0, w.err
	}
	return w.buf.Write(p)
}

func (w *packWriter) Close() error {
	if w.err != nil {
		return w.err
	}
	if w.buf.Len() == 0 {
		return nil
	}
	data := w.buf.Bytes()
	inflated, err := inflatedSize(data, w.s.max)
	if err != nil {
		return err
	}
	if inflated > w.s.max {
		return fmt.Errorf("%w: its objects inflate to more than %d bytes (at least %d)", errFetchTooLarge, w.s.max, inflated)
	}
	p, err := packfile.NewParserWithStorage(packfile.NewScanner(bytes.NewReader(data)), w.s.Storage)
	if err != nil {
		return fmt.Errorf("parse fetched pack: %w", err)
	}
	if _, err := p.Parse(); err != nil {
		return fmt.Errorf("parse fetched pack: %w", err)
	}
	return nil
}

// inflatedSize adds up the sizes a pack's objects have once inflated, from
// their headers (and, for deltas, the target size at the start of the
// delta), without holding any object in memory. It stops counting once
// the total passes max.
func inflatedSize(pack []byte, max int64) (int64, error) {
	sc := packfile.NewScanner(bytes.NewReader(pack))
	_, count, err := sc.Header()
	if err != nil {
		return 0, fmt.Errorf("read fetched pack: %w", err)
	}
	var total int64
	for i := uint32(0); i < count && total <= max; i++ {
		oh, err := sc.NextObjectHeader()
		if err != nil {
			return 0, fmt.Errorf("read fetched pack: %w", err)
		}
		size := oh.Length
		if oh.Type == plumbing.OFSDeltaObject || oh.Type == plumbing.REFDeltaObject {
			h := &deltaHead{}
			if _, _, err := sc.NextObject(h); err != nil {
				return 0, fmt.Errorf("read fetched pack: %w", err)
			}
			size = h.targetSize()
		}
		total += size
	}
	return total, nil
}

// deltaHead keeps the first bytes of a delta (two varints: source and
// target size) and discards the rest.
type deltaHead struct{ b []byte }

func (d *deltaHead) Write(p []byte) (int, error) {
	if n := 20 - len(d.b); n > 0 {
		d.b = append(d.b, p[:min(n, len(p))]...)
	}
	return len(p), nil
}

func (d *deltaHead) targetSize() int64 {
	b := d.b
	for _, skip := range []bool{true, false} {
		var v int64
		var shift uint
		for len(b) > 0 {
			c := b[0]
			b = b[1:]
			v |= int64(c&0x7f) << shift
			shift += 7
			if c&0x80 == 0 || shift > 56 {
				break
			}
		}
		if !skip {
			return v
		}
	}
	return 0
}
