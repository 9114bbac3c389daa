package collector

import (
	"bytes"
	"fmt"
	"io"

	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/consentry/consentry/collector/validate"
	consentryv1 "github.com/consentry/consentry/proto/consentry/v1"
)

// gRPC reports a request that fails to decode as INTERNAL, with the
// decoder's message, before any handler runs. A client that sent bad bytes
// must instead get INVALID_ARGUMENT with a reason it can act on, so the
// collector's codec never fails a decode: it leaves the message empty and
// marks it with an unknown field the handler checks (malformed). A client
// that sends the marker itself only gets its batch refused as malformed.

// decodeErrorField is the field number of the marker: the largest field
// number protobuf allows, which no Consentry message uses.
const decodeErrorField protowire.Number = protowire.MaxValidNumber

// codec wraps gRPC's protobuf codec.
type codec struct {
	base encoding.CodecV2
	// gzipMarker, if set, starts a message gzipPassthrough handed on
	// still compressed.
	gzipMarker []byte
}

func newCodec() codec { return codec{base: encoding.GetCodecV2("proto")} }

// maxControlMessage bounds a compressed message for any method but
// IngestService.Ingest, inflated: consent and health requests are small.
const maxControlMessage = 64 << 10

// Name returns "proto" so clients negotiate it as the protobuf codec.
func (c codec) Name() string { return c.base.Name() }

// Marshal encodes v.
func (c codec) Marshal(v any) (mem.BufferSlice, error) { return c.base.Marshal(v) }

// Unmarshal decodes data into v, marking v as malformed instead of failing.
// An IngestRequest whose strings are not all UTF-8 is decoded leniently
// (validate.UnmarshalRequest), so one bad string costs one event.
//
// A *wireMessage is not decoded: it gets the message's bytes, which the
// edge inflates, scans and charges before it decodes them (inflight.go).
// Any other message that arrives compressed (gzipPassthrough) is
// inflated here, to at most maxControlMessage.
func (c codec) Unmarshal(data mem.BufferSlice, v any) error {
	if w, ok := v.(*wireMessage); ok {
		// gRPC reads a message into one pooled buffer, which it frees
		// once Unmarshal returns: take a reference to it rather than a
		// copy (a message in several buffers is copied into one), and
		// give it back to the pool when the edge is done (release).
		buf := data.MaterializeToBuffer(mem.DefaultBufferPool())
		b := buf.ReadOnlyData()
		w.compressed = len(c.gzipMarker) > 0 && bytes.HasPrefix(b, c.gzipMarker)
		if w.compressed {
			b = b[len(c.gzipMarker):]
		}
		w.b, w.free = b, buf.Free
		return nil
	}
	compressed := false
	if len(c.gzipMarker) > 0 {
		// gRPC reuses its buffers once Unmarshal returns: a control
		// message is small, and copied.
		own := data.Materialize()
		if compressed = bytes.HasPrefix(own, c.gzipMarker); compressed {
			own = own[len(c.gzipMarker):]
		}
		data = mem.BufferSlice{mem.SliceBuffer(own)}
	}
	if compressed {
		b, err := io.ReadAll(io.LimitReader(gzipReader(bytes.NewReader(data.Materialize())), maxControlMessage+1))
		if err != nil || len(b) > maxControlMessage {
			if m, ok := v.(proto.Message); ok {
				markMalformed(m)
				return nil
			}
			return fmt.Errorf("inflate message: %w", err)
		}
		data = mem.BufferSlice{mem.SliceBuffer(b)}
	}
	err := c.base.Unmarshal(data, v)
	if err == nil {
		return nil
	}
	if req, ok := v.(*consentryv1.IngestRequest); ok && validate.UnmarshalRequest(data.Materialize(), req) == nil {
		return nil
	}
	m, ok := v.(proto.Message)
	if !ok {
		return err
	}
	markMalformed(m)
	return nil
}

// markMalformed empties m and marks it as malformed.
func markMalformed(m proto.Message) {
	proto.Reset(m)
	marker := protowire.AppendTag(nil, decodeErrorField, protowire.VarintType)
	marker = protowire.AppendVarint(marker, 1)
	m.ProtoReflect().SetUnknown(marker)
}

// malformed reports whether m was marked by codec.Unmarshal.
func malformed(m proto.Message) bool {
	b := m.ProtoReflect().GetUnknown()
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return true
		}
		if num == decodeErrorField {
			return true
		}
		b = b[n:]
		m := protowire.ConsumeFieldValue(num, typ, b)
		if m < 0 {
			return true
		}
		b = b[m:]
	}
	return false
}
