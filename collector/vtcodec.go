package collector

import (
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"

	"github.com/consentry/consentry/collector/validate"
	consentryv1 "github.com/consentry/consentry/proto/consentry/v1"
)

// The gRPC codec decodes and encodes with the code vtprotobuf generates
// (make proto): UnmarshalVT and MarshalVT do what proto.Unmarshal and
// proto.Marshal do without reflection, at a fraction of the CPU time and
// allocations. UnmarshalVT does not check that strings are UTF-8, so an
// IngestRequest takes that path only when validate.RequestUTF8 finds its
// strings valid; anything else goes the way it always went (proto.Unmarshal,
// then the lenient decoding of UnmarshalRequest).

// vtMessage is a message with vtprotobuf's generated methods.
type vtMessage interface {
	SizeVT() int
	MarshalToSizedBufferVT(dAtA []byte) (int, error)
}

// marshalVT encodes v with its generated code into a buffer of gRPC's
// pool; ok is false for a message without it.
func marshalVT(v any) (out mem.BufferSlice, ok bool, err error) {
	m, ok := v.(vtMessage)
	if !ok {
		return nil, false, nil
	}
	size := m.SizeVT()
	if size == 0 {
		return nil, true, nil
	}
	pool := mem.DefaultBufferPool()
	buf := pool.Get(size)
	if _, err := m.MarshalToSizedBufferVT((*buf)[:size]); err != nil {
		pool.Put(buf)
		return nil, true, err
	}
	return mem.BufferSlice{mem.NewBuffer(buf, pool)}, true, nil
}

// unmarshalVT decodes data into v if v is an IngestRequest whose strings
// are all UTF-8 and UnmarshalVT accepts it, and reports whether it did;
// otherwise v is left empty for the ordinary decoder. UnmarshalVT copies
// what it keeps, so data's buffers may be reused once it returns.
func unmarshalVT(data mem.BufferSlice, v any) bool {
	req, ok := v.(*consentryv1.IngestRequest)
	if !ok {
		return false
	}
	buf := data.MaterializeToBuffer(mem.DefaultBufferPool())
	defer buf.Free()
	b := buf.ReadOnlyData()
	if !validate.RequestUTF8(b) {
		return false
	}
	if err := req.UnmarshalVT(b); err != nil {
		proto.Reset(req)
		return false
	}
	return true
}
