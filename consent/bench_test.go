package consent

import (
	"context"
	"crypto/sha256"
	"strconv"
	"testing"
	"time"

	"github.com/consentry/consentry/pipeline"
	consentryv1 "github.com/consentry/consentry/proto/consentry/v1"
)

// BenchmarkVerifyUncached is the cost of checking a batch's token without
// a cache: an Ed25519 verification and JSON decoding per batch.
func BenchmarkVerifyUncached(b *testing.B) {
	ring := mustRing(b, mustKey(b))
	tok := mustSign(b, ring, claims())
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ring.Verify(tok, t0); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyCached is the cost per batch once a device's token has
// been seen: a SHA-256 of the token and a map lookup.
func BenchmarkVerifyCached(b *testing.B) {
	ring := mustRing(b, mustKey(b))
	tok := mustSign(b, ring, claims())
	v := mustVerifier(b, ring, 0)
	if _, err := v.Verify(tok, t0); err != nil {
		b.Fatal(err)
	}
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := v.Verify(tok, t0); err != nil {
				b.Fatal(err)
			}
		}
	})
	// Many devices, many batches at once: 10,000 tokens in the cache.
	toks := make([]string, 10000)
	for i := range toks {
		toks[i] = mustSign(b, ring, claims())
		if _, err := v.Verify(toks[i], t0); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				if _, err := v.Verify(toks[i%len(toks)], t0); err != nil {
					b.Error(err)
					return
				}
				i++
			}
		})
	})
}

// BenchmarkFilterProcess is the whole consent stage per batch (cached
// verification, revocation lookup, pseudonym, scope check).
func BenchmarkFilterProcess(b *testing.B) {
	ring := mustRing(b, mustKey(b))
	c := claims()
	c.Scopes = append(c.Scopes, consentryv1.ScopeCrashReports)
	tok := mustSign(b, ring, c)
	revs := newTestRevocations(b, newFakeStore(), newClock(t0), nil)
	if err := revs.Refresh(context.Background()); err != nil {
		b.Fatal(err)
	}
	apps := newTestRegistry(b, newFakeStore())
	apps.Put(testApp("com.example.notes", PolicyErasable, t0))
	f, err := NewFilter(FilterConfig{Keys: ring, Revocations: revs, Apps: apps, Secret: testSecret, Now: func() time.Time { return t0 }})
	if err != nil {
		b.Fatal(err)
	}
	events := make([]*consentryv1.Event, 50)
	for i := range events {
		events[i] = &consentryv1.Event{Payload: &consentryv1.Event_Gesture{Gesture: &consentryv1.Gesture{}}}
	}
	req := &consentryv1.IngestRequest{ConsentToken: tok, Device: &consentryv1.DeviceContext{AppId: "com.example.notes"}, Events: events}
	b.ReportAllocs()
	for b.Loop() {
		batch := pipeline.NewBatch(req, t0, netipZero)
		if err := f.Process(context.Background(), batch); err != nil || batch.Live() != len(events) {
			b.Fatal(err)
		}
	}
}

// BenchmarkRevokedLookup is the revocation check per batch with 1,000,000
// revocations held.
func BenchmarkRevokedLookup(b *testing.B) {
	r := newTestRevocations(b, newFakeStore(), newClock(t0), nil)
	const n = 1_000_000
	for i := range n {
		if err := r.Add(Revocation{ConsentHash: HashConsentID(strconv.Itoa(i)), RevokedAt: t0, ExpiresAt: t0.Add(time.Hour)}); err != nil {
			b.Fatal(err)
		}
	}
	id := NewConsentID()
	b.Run("miss", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, ok := r.Revoked(id); ok {
				b.Fatal("revoked")
			}
		}
	})
	b.Run("hit", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, ok := r.Revoked("123456"); !ok {
				b.Fatal("not revoked")
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				r.Revoked(id)
			}
		})
	})
}

// BenchmarkGateAdmit is the ship-time check per spooled record with
// 1,000,000 revocations and 10,000 erased consents held.
func BenchmarkGateAdmit(b *testing.B) {
	store := newFakeStore()
	clk := newClock(t0)
	r := newTestRevocations(b, store, clk, nil)
	for i := range 1_000_000 {
		if err := r.Add(Revocation{ConsentHash: HashConsentID(strconv.Itoa(i)), RevokedAt: t0, ExpiresAt: t0.Add(time.Hour)}); err != nil {
			b.Fatal(err)
		}
	}
	g, err := NewGate(GateConfig{Revocations: r, Store: store, Now: clk.Now})
	if err != nil {
		b.Fatal(err)
	}
	keys := make(map[string]struct{}, 10_000)
	for i := range 10_000 {
		keys[ConsentKey(testSecret, strconv.Itoa(i))] = struct{}{}
	}
	g.addErased(keys)
	o := pipeline.Origin{ConsentHash: sha256.Sum256([]byte(NewConsentID())), ConsentKey: ConsentKey(testSecret, "kept"), Received: t0}
	b.ReportAllocs()
	for b.Loop() {
		if !g.Admit(o) {
			b.Fatal("refused")
		}
	}
}
