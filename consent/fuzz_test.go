package consent

import "testing"

// FuzzVerify: any input either verifies as a token the ring signed or is
// refused; it never panics.
func FuzzVerify(f *testing.F) {
	ring := mustRing(f, mustKey(f))
	good, err := ring.Sign(claims())
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{good, "", "a.b.c", "eyJhbGciOiJub25lIn0.e30.", good + "x", good[:len(good)-3]} {
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
	})
}
