package grpclogz

import (
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/consentry/consentry/anonymizer/scrub"
)

func TestScrubsAddresses(t *testing.T) {
	core, logs := observer.New(zap.DebugLevel)
	l := New(zap.New(core), scrub.New(scrub.Config{}).String)
	l.Warningf("grpc: Server.Serve failed to complete security handshake from %q: EOF", "203.0.113.7:5555")
	l.Infoln("transport closing for", "[2001:db8::7]:443")
	l.Error("plain")
	got := logs.All()
	if len(got) != 3 {
		t.Fatalf("got %d entries", len(got))
	}
	for _, e := range got {
		if strings.Contains(e.Message, "203.0.113.7") || strings.Contains(e.Message, "2001:db8::7") {
			t.Fatalf("address logged: %q", e.Message)
		}
	}
	if got[0].Level != zap.WarnLevel || got[1].Level != zap.DebugLevel || got[2].Message != "plain" {
		t.Fatalf("entries = %+v", got)
	}
}
