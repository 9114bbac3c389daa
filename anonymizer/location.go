package anonymizer

import (
	"net/netip"
	"strings"

	"github.com/consentry/consentry/anonymizer/geo"
	consentryv1 "github.com/consentry/consentry/proto/consentry/v1"
)

// IPLocator maps an IP address to a coarse location; geo.IPDB is one.
type IPLocator interface {
	Lookup(ip netip.Addr) (geo.Location, error)
}

// CoordLocator maps coordinates to a coarse location; geo.Boundaries is
// one.
type CoordLocator interface {
	Lookup(lat, lon float64) geo.Location
}

// RegionSet tells first-level region codes from others; geo.Boundaries is
// one.
type RegionSet interface {
	KnownRegion(code string) bool
}

// LocationSource says where a stored location came from.
type LocationSource uint8

// The sources of a location, in the order they are tried.
const (
	// SourceNone: nothing was derived; the location is stored as unknown.
	SourceNone LocationSource = iota
	// SourceCoordinates: the device's coordinates, through the boundary
	// dataset.
	SourceCoordinates
	// SourceCodes: the country and region codes the app sent.
	SourceCodes
	// SourceIP: the connection's address, through the IP database.
	SourceIP
)

// locate derives the batch's coarse location, trying, in order, the
// device's coordinates, the codes the app sent, and the peer address. The
// first source present decides: coordinates that fall in no boundary
// (at sea, or invalid) give unknown rather than a guess from the next
// source. Coordinates and the address are used here only, and neither is
// kept.
func (s *Stage) locate(l *consentryv1.CoarseLocation, peer netip.Addr) (geo.Location, LocationSource) {
	if l != nil && (l.Latitude != nil || l.Longitude != nil) {
		if l.Latitude == nil || l.Longitude == nil || s.cfg.Coordinates == nil {
			return geo.Location{}, SourceNone
		}
		return checked(s.cfg.Coordinates.Lookup(l.GetLatitude(), l.GetLongitude()), s.cfg.Regions), SourceCoordinates
	}
	if l.GetCountryCode() != "" {
		return s.clientCodes(l), SourceCodes
	}
	if peer.IsValid() && s.cfg.IPs != nil {
		loc, err := s.cfg.IPs.Lookup(peer.Unmap())
		if err != nil {
			s.ipErrors.Add(1)
			return geo.Location{}, SourceNone
		}
		return checked(loc, s.cfg.Regions), SourceIP
	}
	return geo.Location{}, SourceNone
}

// clientCodes returns the country and region codes the app sent, if
// well-formed: a region must belong to the country and, when a RegionSet
// is configured, be a first-level subdivision (so "FR-75", a department,
// is refused while "FR-IDF" is kept).
func (s *Stage) clientCodes(l *consentryv1.CoarseLocation) geo.Location {
	return checked(geo.Location{
		Country: strings.ToUpper(strings.TrimSpace(l.GetCountryCode())),
		Region:  strings.ToUpper(strings.TrimSpace(l.GetRegionCode())),
	}, s.cfg.Regions)
}

// checked returns loc well-formed (geo.Location.WellFormed), with a
// region dropped unless regions, if set, knows it as first level.
func checked(loc geo.Location, regions RegionSet) geo.Location {
	loc = loc.WellFormed()
	if loc.Region != "" && regions != nil && !regions.KnownRegion(loc.Region) {
		loc.Region = ""
	}
	return loc
}
