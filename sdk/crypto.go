package sdk

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/consentry/consentry/internal/atomicfile"
)

// Encryption at rest. The master key (Config.QueueKey, or queue.key in the
// storage folder) never encrypts data itself: the consent state is sealed
// with a key derived from it (HKDF-SHA256), and the queue with a random
// data key of the current epoch, which the state holds. A purge starts a
// new epoch with a new data key, so records of an earlier epoch cannot be
// decrypted any more even where the flash storage keeps deleted blocks.
//
// A sealed blob is a frame: a 4-byte magic, the payload length as a
// big-endian uint32, and the payload, a 12-byte random nonce followed by
// the AES-256-GCM ciphertext and tag. The 8 header bytes are the
// additional authenticated data, so a changed length or magic fails the
// tag like a changed ciphertext does.

const (
	// keySize is the size of every key: AES-256.
	keySize = 32
	// frameHeaderSize is the magic and the length.
	frameHeaderSize = 8
	// frameOverhead is what a frame adds to its plaintext.
	frameOverhead = frameHeaderSize + nonceSize + tagSize
	nonceSize     = 12
	tagSize       = 16
	// maxFramePayload bounds a frame's payload: a record is one event, at
	// most a few hundred KiB even with a full stack trace.
	maxFramePayload = 4 << 20
)

// Frame magics.
const (
	magicQueue = "CSQ1" // a queue record
	magicState = "CSS1" // the consent state
)

// errFrame is returned for a frame that is truncated, malformed or fails
// authentication. Its text says nothing about the contents.
var errFrame = errors.New("frame corrupted or truncated")

// newAEAD returns AES-256-GCM with key.
func newAEAD(key []byte) (cipher.AEAD, error) {
	if len(key) != keySize {
		return nil, fmt.Errorf("key has %d bytes, want %d", len(key), keySize)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// deriveKey derives the key for purpose from the master key.
func deriveKey(master []byte, purpose string) ([]byte, error) {
	return hkdf.Key(sha256.New, master, nil, "consentry sdk "+purpose, keySize)
}

// sealFrame appends to dst the frame of plaintext sealed with aead.
func sealFrame(dst []byte, aead cipher.AEAD, magic string, plaintext []byte) ([]byte, error) {
	n := nonceSize + len(plaintext) + tagSize
	if n > maxFramePayload {
		return dst, fmt.Errorf("record of %d bytes exceeds %d", len(plaintext), maxFramePayload-nonceSize-tagSize)
	}
	start := len(dst)
	dst = append(dst, magic...)
	dst = binary.BigEndian.AppendUint32(dst, uint32(n))
	hdr := start + frameHeaderSize
	dst = append(dst, make([]byte, nonceSize)...)
	if _, err := rand.Read(dst[hdr : hdr+nonceSize]); err != nil {
		return dst[:start], fmt.Errorf("draw nonce: %w", err)
	}
	// Seal may reallocate dst, so the nonce and the header are taken from
	// a copy.
	var head [frameHeaderSize + nonceSize]byte
	copy(head[:], dst[start:])
	return aead.Seal(dst, head[frameHeaderSize:], plaintext, head[:frameHeaderSize]), nil
}

// frameLen returns the total length of the frame that b starts with, from
// its header alone, or false if b does not start with a plausible header
// of magic.
func frameLen(b []byte, magic string) (int, bool) {
	if len(b) < frameHeaderSize || string(b[:4]) != magic {
		return 0, false
	}
	n := binary.BigEndian.Uint32(b[4:frameHeaderSize])
	if n < nonceSize+tagSize || n > maxFramePayload {
		return 0, false
	}
	return frameHeaderSize + int(n), true
}

// openFrame decrypts the frame b starts with, appending the plaintext to
// dst. It returns the frame's length, or errFrame if b does not start with
// a complete frame of magic that authenticates.
func openFrame(dst []byte, aead cipher.AEAD, magic string, b []byte) (plain []byte, n int, err error) {
	n, ok := frameLen(b, magic)
	if !ok || n > len(b) {
		return dst, 0, errFrame
	}
	nonce := b[frameHeaderSize : frameHeaderSize+nonceSize]
	out, err := aead.Open(dst, nonce, b[frameHeaderSize+nonceSize:n], b[:frameHeaderSize])
	if err != nil {
		return dst, 0, errFrame
	}
	return out, n, nil
}

// keyFileName is the generated master key's file in the storage folder.
const keyFileName = "queue.key"

// loadMasterKeys returns the candidates for the master key: the app's
// key if it supplied one; otherwise the generated key, kept in
// dir/queue.key and its copy (copySuffix), both created (mode 0600) if
// neither exists. Where the two files differ (one damaged), both are
// candidates, queue.key's first: the one that opens the consent state
// is the key (openState), and repairMasterKey puts the other file right.
func loadMasterKeys(dir string, supplied []byte) ([][]byte, error) {
	if len(supplied) != 0 {
		return [][]byte{supplied}, nil
	}
	paths := keyPaths(dir)
	var keys [][]byte
	var bad []string
	found := false
	for _, path := range paths {
		key, err := os.ReadFile(path)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			continue
		case err != nil:
			return nil, fmt.Errorf("read queue key: %w", err)
		}
		found = true
		if len(key) != keySize {
			bad = append(bad, fmt.Sprintf("%s holds %d bytes, want %d", path, len(key), keySize))
			continue
		}
		if !slices.ContainsFunc(keys, func(k []byte) bool { return bytes.Equal(k, key) }) {
			keys = append(keys, key)
		}
	}
	switch {
	case len(keys) > 0:
		return keys, nil
	case found:
		return nil, fmt.Errorf("queue key: %s", strings.Join(bad, "; "))
	}
	key := make([]byte, keySize)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("generate queue key: %w", err)
	}
	for _, path := range paths {
		if err := writeFileAtomic(path, key); err != nil {
			return nil, fmt.Errorf("write queue key: %w", err)
		}
	}
	return [][]byte{key}, nil
}

// keyPaths returns the generated master key's file and its copy in dir.
func keyPaths(dir string) [2]string {
	p := filepath.Join(dir, keyFileName)
	return [2]string{p, p + copySuffix}
}

// repairMasterKey rewrites whichever of the generated key's two files
// does not hold master (missing, damaged or cut), returning the names
// of those it rewrote, and whether one of them was there (not only
// missing).
func repairMasterKey(dir string, master []byte) (restored []string, damaged bool, err error) {
	for _, path := range keyPaths(dir) {
		b, rerr := os.ReadFile(path)
		if rerr == nil && bytes.Equal(b, master) {
			continue
		}
		if werr := writeFileAtomic(path, master); werr != nil {
			err = errors.Join(err, fmt.Errorf("restore queue key: %w", werr))
			continue
		}
		restored = append(restored, filepath.Base(path))
		damaged = damaged || rerr == nil
	}
	return restored, damaged, err
}

// writeFileAtomic replaces path with data (mode 0600) whole or not at
// all (atomicfile.Replace: a temporary file, synced, renamed over path,
// the folder synced), so a crash leaves either the old or the new
// content. On a full disk the error wraps ErrStorageFull.
func writeFileAtomic(path string, data []byte) error {
	err := atomicfile.Replace(path, data)
	if diskFull(err) {
		return fmt.Errorf("%w: %w", ErrStorageFull, err)
	}
	return err
}
