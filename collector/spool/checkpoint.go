package spool

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"
	"path/filepath"
)

// Checkpoint layout; doc.go describes it.
const (
	ckMagic  = "CSPC"
	ckName   = "checkpoint"
	ckIntent = 1 << 0

	// Version 2: two slots, overwritten in place alternately.
	ckV2       = 2
	ckSizeV2   = 76
	ckSlotSize = 512
	ckFileSize = 2 * ckSlotSize

	// Version 1 (read once, when upgrading): one record replaced by
	// write-and-rename.
	ckV1     = 1
	ckSizeV1 = 60
)

// checkpoint is the shipper's durable progress. Every record with a
// sequence below shipped is stored (or was lost to damage, or refused by
// the gate); pos is where the record with sequence shipped is (or will
// be), and row is the number of rows written before it. With an intent,
// records [shipped, intentEnd) may have been inserted with token
// "<id>:<shipped>:<intentEnd>" and must be inserted again with that token
// before anything else.
type checkpoint struct {
	id        [idBytes]byte
	shipped   uint64
	row       uint64
	pos       position
	intent    bool
	intentEnd uint64
	// trusted: read from a v2 checkpoint (or written by this version), so
	// pos is exact and the bytes before it may have been punched out; a
	// v1 position is a hint to verify.
	trusted bool
}

// position is a byte offset in a segment.
type position struct {
	seg uint64
	off int64
}

// marshal encodes c as a version 2 slot of generation gen:
//
//	magic "CSPC" | version u16 (2) | flags u16 (bit 0: intent) |
//	generation u64 | spool id [16] | shipped u64 | row u64 |
//	position segment u64 | position offset u64 | intent end u64 |
//	CRC-32C of the preceding 72 bytes
func (c checkpoint) marshal(gen uint64) []byte {
	b := make([]byte, ckSizeV2)
	copy(b, ckMagic)
	binary.LittleEndian.PutUint16(b[4:], ckV2)
	if c.intent {
		binary.LittleEndian.PutUint16(b[6:], ckIntent)
	}
	binary.LittleEndian.PutUint64(b[8:], gen)
	copy(b[16:], c.id[:])
	binary.LittleEndian.PutUint64(b[32:], c.shipped)
	binary.LittleEndian.PutUint64(b[40:], c.row)
	binary.LittleEndian.PutUint64(b[48:], c.pos.seg)
	binary.LittleEndian.PutUint64(b[56:], uint64(c.pos.off))
	binary.LittleEndian.PutUint64(b[64:], c.intentEnd)
	binary.LittleEndian.PutUint32(b[72:], crc32.Checksum(b[:72], castagnoli))
	return b
}

// parseSlot parses a version 2 slot, returning its generation.
func parseSlot(b []byte) (checkpoint, uint64, error) {
	if len(b) < ckSizeV2 || string(b[:4]) != ckMagic {
		return checkpoint{}, 0, errors.New("not a spool checkpoint")
	}
	if crc32.Checksum(b[:72], castagnoli) != binary.LittleEndian.Uint32(b[72:]) {
		return checkpoint{}, 0, errors.New("checkpoint checksum mismatch")
	}
	if v := binary.LittleEndian.Uint16(b[4:]); v != ckV2 {
		return checkpoint{}, 0, fmt.Errorf("checkpoint version %d", v)
	}
	c := checkpoint{trusted: true}
	c.intent = binary.LittleEndian.Uint16(b[6:])&ckIntent != 0
	gen := binary.LittleEndian.Uint64(b[8:])
	copy(c.id[:], b[16:32])
	c.shipped = binary.LittleEndian.Uint64(b[32:])
	c.row = binary.LittleEndian.Uint64(b[40:])
	c.pos.seg = binary.LittleEndian.Uint64(b[48:])
	c.pos.off = int64(binary.LittleEndian.Uint64(b[56:]))
	c.intentEnd = binary.LittleEndian.Uint64(b[64:])
	if c.intent && c.intentEnd <= c.shipped {
		return checkpoint{}, 0, fmt.Errorf("checkpoint intent [%d, %d) is empty", c.shipped, c.intentEnd)
	}
	return c, gen, nil
}

// parseCheckpointV1 parses a version 1 checkpoint:
//
//	magic "CSPC" | version u16 (1) | flags u16 (bit 0: intent) | spool id [16] |
//	shipped u64 | position segment u64 | position offset u64 |
//	intent end u64 | CRC-32C of the preceding 56 bytes
func parseCheckpointV1(b []byte) (checkpoint, error) {
	if len(b) < ckSizeV1 || string(b[:4]) != ckMagic {
		return checkpoint{}, errors.New("not a spool checkpoint")
	}
	if crc32.Checksum(b[:56], castagnoli) != binary.LittleEndian.Uint32(b[56:]) {
		return checkpoint{}, errors.New("checkpoint checksum mismatch")
	}
	if v := binary.LittleEndian.Uint16(b[4:]); v != ckV1 {
		return checkpoint{}, fmt.Errorf("checkpoint version %d", v)
	}
	var c checkpoint
	c.intent = binary.LittleEndian.Uint16(b[6:])&ckIntent != 0
	copy(c.id[:], b[8:24])
	c.shipped = binary.LittleEndian.Uint64(b[24:])
	c.pos.seg = binary.LittleEndian.Uint64(b[32:])
	c.pos.off = int64(binary.LittleEndian.Uint64(b[40:]))
	c.intentEnd = binary.LittleEndian.Uint64(b[48:])
	if c.intent && c.intentEnd <= c.shipped {
		return checkpoint{}, fmt.Errorf("checkpoint intent [%d, %d) is empty", c.shipped, c.intentEnd)
	}
	return c, nil
}

// ckFile is the open checkpoint file. It holds two slots; a write goes to
// the slot the newest one is not in, overwriting it in place and syncing
// the file, so a crash or a torn write leaves the other, previous one
// valid, and writing needs no free space on the volume (the file's blocks
// were allocated when it was created). On open the valid slot with the
// highest generation wins.
type ckFile struct {
	f   file
	gen uint64 // generation of the newest valid slot
}

// openCheckpoint opens the checkpoint in dir. A version 1 checkpoint is
// converted: its content is written to slot 1 (inside the file's first
// block, so no space is needed) and overwritten by the next write. found
// is false when there is none yet; the caller creates it with
// createCheckpoint.
func openCheckpoint(fsys fileSystem, dir string) (ck checkpoint, cf *ckFile, found bool, err error) {
	path := filepath.Join(dir, ckName)
	// A version 1 spool may have left its temporary file behind.
	if err := fsys.Remove(path + ".tmp"); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return checkpoint{}, nil, false, fmt.Errorf("remove stale checkpoint: %w", err)
	}
	f, err := fsys.OpenFile(path, os.O_RDWR, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return checkpoint{}, nil, false, nil
	}
	if err != nil {
		return checkpoint{}, nil, false, fmt.Errorf("open checkpoint: %w", err)
	}
	ck, gen, err := readCheckpoint(f)
	if err == nil && gen == 0 {
		// Version 1: rewrite it as a version 2 slot.
		cf = &ckFile{f: f}
		if err = cf.write(ck); err != nil {
			err = fmt.Errorf("convert version 1 checkpoint: %w", err)
		}
		ck.trusted = false // its position still came from version 1
	}
	if err != nil {
		_ = f.Close()
		// Written in place with a checksum and a previous slot to fall
		// back on, so only a damaged disk gets here. Guessing the
		// position could ship records twice under new tokens or skip
		// some, so an operator decides: removing the file re-ships every
		// segment.
		return checkpoint{}, nil, false, fmt.Errorf("checkpoint %s is unreadable (%w); remove it to re-ship all segments (at least once)", path, err)
	}
	if cf == nil {
		cf = &ckFile{f: f, gen: gen}
	}
	return ck, cf, true, nil
}

// readCheckpoint returns the newest valid slot and its generation, or a
// version 1 checkpoint with generation 0.
func readCheckpoint(f file) (checkpoint, uint64, error) {
	size, err := f.Size()
	if err != nil {
		return checkpoint{}, 0, fmt.Errorf("stat checkpoint: %w", err)
	}
	b := make([]byte, min(size, ckFileSize))
	if err := readFull(f, b, 0); err != nil {
		return checkpoint{}, 0, fmt.Errorf("read checkpoint: %w", err)
	}
	var (
		best    checkpoint
		bestGen uint64
		errs    []error
	)
	for slot := range 2 {
		lo := slot * ckSlotSize
		if len(b) < lo+ckSizeV2 {
			errs = append(errs, fmt.Errorf("slot %d: %d bytes", slot, max(len(b)-lo, 0)))
			continue
		}
		ck, gen, err := parseSlot(b[lo : lo+ckSizeV2])
		if err != nil {
			errs = append(errs, fmt.Errorf("slot %d: %w", slot, err))
			continue
		}
		if gen > bestGen {
			best, bestGen = ck, gen
		}
	}
	if bestGen > 0 {
		return best, bestGen, nil
	}
	ck, err := parseCheckpointV1(b)
	if err == nil {
		return ck, 0, nil
	}
	return checkpoint{}, 0, errors.Join(append(errs, fmt.Errorf("version 1: %w", err))...)
}

// createCheckpoint creates the checkpoint file, atomically, holding ck as
// generation 1 (in slot 1, where write puts odd generations) and an empty
// slot 0, and opens it.
func createCheckpoint(fsys fileSystem, dir string, ck checkpoint) (*ckFile, error) {
	path := filepath.Join(dir, ckName)
	b := make([]byte, ckFileSize)
	copy(b[ckSlotSize:], ck.marshal(1))
	if err := writeFileAtomic(fsys, path, b); err != nil {
		return nil, fmt.Errorf("create checkpoint: %w", err)
	}
	f, err := fsys.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("open checkpoint: %w", err)
	}
	return &ckFile{f: f, gen: 1}, nil
}

// write makes ck the newest checkpoint: it overwrites the older slot (slot
// gen%2 for generation gen) and syncs the file.
func (c *ckFile) write(ck checkpoint) error {
	gen := c.gen + 1
	if err := writeFull(c.f, ck.marshal(gen), int64(gen%2)*ckSlotSize); err != nil {
		return fmt.Errorf("write checkpoint: %w", err)
	}
	if err := c.f.Sync(); err != nil {
		return fmt.Errorf("sync checkpoint: %w", err)
	}
	c.gen = gen
	return nil
}

func (c *ckFile) close() error { return c.f.Close() }
