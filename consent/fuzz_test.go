package consent

import "testing"

// FuzzVerify: any input either verifies as a token the ring signed or is
// refused; it never panics. A Verifier agrees with its key ring, before
// and after caching, and no input is both a token and a receipt.
func FuzzVerify(f *testing.F) {
	ring := mustRing(f, mustKey(f))
	good, err := ring.Sign(claims())
	if err != nil {
		f.Fatal(err)
	}
	receipt, err := ring.SignReceipt(Receipt{ConsentKey: "k", AppID: "com.example.notes", Outcome: OutcomeErased, ErasedAt: t0})
	if err != nil {
		f.Fatal(err)
	}
	v := mustVerifier(f, ring, 64)
	for _, s := range []string{good, "", "a.b.c", "eyJhbGciOiJub25lIn0.e30.", good + "x", good[:len(good)-3], receipt} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, tok string) {
		c, err := ring.Verify(tok, t0)
		if err == nil && tok != good {
			// A different string that verifies must carry the same claims
			// (base64 padding variants); anything else is a forgery.
			g, _ := ring.Verify(good, t0)
			if c.ConsentID != g.ConsentID {
				t.Fatalf("forged token verified: %q", tok)
			}
		}
		for range 2 { // a miss, then a hit if it verified
			vc, verr := v.Verify(tok, t0)
			wantOK := err == nil && len(tok) <= MaxTokenSize
			if (verr == nil) != wantOK {
				t.Fatalf("Verifier says %v, key ring says %v", verr, err)
			}
			if verr == nil && vc.ConsentID != c.ConsentID {
				t.Fatalf("Verifier claims %+v, key ring claims %+v", vc, c)
			}
		}
		if _, rerr := ring.VerifyReceipt(tok); rerr == nil && err == nil {
			t.Fatalf("%q is both a consent token and a receipt", tok)
		}
	})
}
