package scrub

import "testing"

// TestStreetAddresses: a geocoder's error, a delivery app's exception or
// a form's validation error may print a street address with its house
// number, in any of the orders countries write one; it was kept whole.
// The city after it stays.
func TestStreetAddresses(t *testing.T) {
	runCases(t, []scrubCase{
		// the number first: English
		{"shipping to 221B Baker Street, London", "shipping to [address], London"},
		{`invalid address "742 Evergreen Terrace, Springfield"`, `invalid address "[address], Springfield"`},
		{"geocode(1600 Amphitheatre Pkwy, Mountain View) failed", "geocode([address], Mountain View) failed"},
		{"10 Downing St. London", "[address] London"},
		{"DELIVER TO 350 FIFTH AVENUE NEW YORK", "DELIVER TO [address] NEW YORK"},
		{"deliver to 221b baker street", "deliver to [address]"},
		{"12 Oak Road", "[address]"},
		// the number first, the type in lower case: French
		{"livraison: 12 rue de la Paix, 75002 Paris", "livraison: [address], [address] Paris"},
		{"8 avenue des Champs-Élysées", "[address]"},
		{"3 boulevard Haussmann", "[address]"},
		{"5 place Vendôme", "[address]"},
		{"12 rue de la paix", "[address]"},
		// the type first, the number last
		{"envío a Calle Mayor 5, Madrid", "envío a [address], Madrid"},
		{"Via Roma 12, 00184 Roma", "[address], [address] Roma"},
		{"Avenida Paulista 1578", "[address]"},
		{"Av. Paulista 1578", "[address]"},
		{"Carrer de Balmes 25", "[address]"},
		{"calle mayor 5", "[address]"},
		{"Rua Augusta 100A", "[address]"},
		{"vIa rOmA 12", "[address]"},
		{"via fANbARguS 5", "[address]"}, // the type came out in lower case
		{"Via zoLRUsZIs 933", "[address]"},
		{"36 bOuLEvard GonZenfol", "[address]"},
		{"12 Rue de la Paix", "[address]"},
		// one word with the type, then the number
		{"Lieferadresse: Hauptstraße 12, 10115 Berlin", "Lieferadresse: [address], [address] Berlin"},
		{"Hauptstr. 3", "[address]"},
		{"Kalverstraat 92, Amsterdam", "[address], Amsterdam"},
		{"Kalverstraat 92, 1012 Amsterdam", "[address], [address] Amsterdam"},
		{"Storgatan 5", "[address]"},
		{"Mariahilfer Gasse 7", "[address]"},
		{"Berliner Allee 5", "[address]"},
		{"hauptstrasse 12", "[address]"},
		{"Vesterbrogade 3", "[address]"},
		// a line of groups that an IBAN wrapped over two lines would
		// continue with the house number (found by FuzzEncoded)
		{"BA03 BA00 F900\n221B Baker Street", "BA03 BA00 F900\n[address]"},
	})
	runCases(t, kept(
		"Thread 3 Crashed",
		"2 items on the road",
		"3 place holders",
		"sent via http 2",
		"Via HTTP/2",
		"2 usb drive",
		"Route 66",
		"retry 3 times on the way",
		"String 3",
		"brigade 2",
		"the Weg 3",
		"10 Downing",
		"Baker Street",
		"12 Baker",
		"frame 4 Main Thread",
		"API 34 Street View",
		"Hauptstraße",
		"Hauptstraße 12345",
		"0x12 Street",
		"cAnvas View 12",
		"via Roma 12",
	))
}

// TestPostcodes: a full postcode of the UK names some fifteen addresses,
// one of Canada a street's side; both have shapes of their own. A US ZIP
// code follows its state's code; other countries' postcodes are numbers
// that only a key or the street address before them tells apart.
func TestPostcodes(t *testing.T) {
	runCases(t, []scrubCase{
		{"London SW1A 1AA, UK", "London [address], UK"},
		{"postcode M1 1AE", "postcode [address]"},
		{"B33 8TH", "[address]"},
		{"CR2 6XH", "[address]"},
		{"sw1a 1aa", "[address]"},
		{"Ottawa ON K1A 0B1", "Ottawa ON [address]"},
		{"k1a 0b1", "[address]"},
		{"sW1a 1Aa", "[address]"},
		{"postcode: SW1A 1AA", "postcode: [address]"},
		// a US ZIP code after its state's code; the state, a region,
		// stays
		{"1600 Amphitheatre Pkwy, Mountain View, CA 94043", "[address], Mountain View, CA [address]"},
		{"Boston MA 02110-1301, USA", "Boston MA [address], USA"},
	})
	runCases(t, kept(
		"Apple M1 8GB",
		"M2 1TB",
		"SW1A 1CA", // C is no inward letter
		"A1 2BC",   // C again
		"SW1A 1AAB",
		"SW1A-1AA",
		"K1A 0B12",
		"x0 1ab",
		"User ID 12345",
		"error CA 12345x",
		"CA 1234567",
		"count 12, 10115 Berlin",
	))
}
