package geo_test

import (
	"fmt"
	"log"

	"github.com/consentry/consentry/anonymizer/geo"
)

func ExampleBoundaries_Lookup() {
	b, err := geo.LoadBoundaries() // once, at start-up
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(b.Lookup(48.2082, 16.3738)) // Vienna
	fmt.Println(b.Lookup(53.3498, -6.2603)) // Dublin: county → province
	fmt.Println(b.Lookup(-1.2921, 36.8219)) // Nairobi: country only
	fmt.Println(b.Lookup(30, -40).Known())  // mid-Atlantic
	// Output:
	// {AT AT-9}
	// {IE IE-L}
	// {KE }
	// false
}
