package main

import (
	"regexp"
	"strings"
)

// properties holds the Natural Earth admin-1 feature properties the
// generator reads. Absent and null properties decode as "".
type properties struct {
	ISOA2     string  `json:"iso_a2"`
	ISO31662  string  `json:"iso_3166_2"`
	Region    string  `json:"region"`
	RegionCod string  `json:"region_cod"`
	GeoNUnit  string  `json:"geonunit"`
	Name      string  `json:"name"`
	Admin     string  `json:"admin"`
	TypeEn    string  `json:"type_en"`
	Latitude  float64 `json:"latitude"`  // label point
	Longitude float64 `json:"longitude"` // label point
}

var (
	countryPattern = regexp.MustCompile(`^[A-Z]{2}$`)
	regionPattern  = regexp.MustCompile(`^[A-Z]{2}-[A-Z0-9]{1,3}$`)
)

// rules holds the tables that map Natural Earth admin-1 features to ISO 3166
// codes. It is read-only after newRules returns.
type rules struct {
	countryOnly  map[string]string
	isoRecode    map[string]string
	byRegionName map[string]map[string]string
	byName       map[string]map[string]string
	byRegionCode map[string]bool
	regionCodFix map[string]string
	byFeature    map[string][2]string
	gbNations    map[string]string
}

// newRules returns the mapping tables.
func newRules() *rules {
	return &rules{
		countryOnly:  countryOnly(),
		isoRecode:    isoRecode(),
		byRegionName: byRegionName(),
		byName:       byName(),
		byRegionCode: byRegionCode(),
		regionCodFix: map[string]string{
			"GW-B": "GW-BS", // Bissau, an autonomous sector at first level
		},
		byFeature: byFeature(),
		gbNations: map[string]string{
			"England": "GB-ENG", "Scotland": "GB-SCT", "Wales": "GB-WLS", "Northern Ireland": "GB-NIR",
		},
	}
}

// countryOnly lists countries whose Natural Earth admin-1 units are too fine
// to be a coarse location, or carry codes that ISO 3166-2 has since
// withdrawn, and cannot be mapped to current first-level codes reliably.
// Their features keep the country but no region.
func countryOnly() map[string]string {
	return map[string]string{
		"CI": "19 former regions (CI-01…CI-19); ISO 3166-2:CI now uses 14 districts",
		"KE": "8 former provinces (KE-110…KE-800); ISO 3166-2:KE now uses 47 counties",
		"LU": "3 former districts; ISO 3166-2:LU now uses 12 cantons",
		"LV": "119 pre-2021 municipalities; ISO 3166-2:LV codes changed with the 2021 reform",
		"MA": "16 pre-2015 regions whose codes ISO 3166-2:MA reassigned to 12 new regions",
		"MK": "84 municipalities with pre-2020 codes (MK-01…); ISO 3166-2:MK renumbered them",
		"NP": "14 former zones; ISO 3166-2:NP now uses 7 provinces",
		"SI": "193 municipalities (ISO first level, but far too fine to be coarse)",
	}
}

// isoRecode maps Natural Earth codes that ISO 3166-2 has since replaced, or
// that it gets wrong, to the current code (or to their first-level parent).
func isoRecode() map[string]string {
	return map[string]string{
		// Czech regions: ISO 3166-2:CZ switched to numeric codes.
		"CZ-PR": "CZ-10", "CZ-ST": "CZ-20", "CZ-JC": "CZ-31", "CZ-PL": "CZ-32",
		"CZ-KA": "CZ-41", "CZ-US": "CZ-42", "CZ-LI": "CZ-51", "CZ-KR": "CZ-52",
		"CZ-PA": "CZ-53", "CZ-VY": "CZ-63", "CZ-JM": "CZ-64", "CZ-OL": "CZ-71",
		"CZ-ZL": "CZ-72", "CZ-MO": "CZ-80",
		// Polish voivodeships: ISO 3166-2:PL switched to numeric codes in 2018.
		"PL-DS": "PL-02", "PL-KP": "PL-04", "PL-LU": "PL-06", "PL-LB": "PL-08",
		"PL-LD": "PL-10", "PL-MA": "PL-12", "PL-MZ": "PL-14", "PL-OP": "PL-16",
		"PL-PK": "PL-18", "PL-PD": "PL-20", "PL-PM": "PL-22", "PL-SL": "PL-24",
		"PL-SK": "PL-26", "PL-WN": "PL-28", "PL-WP": "PL-30", "PL-ZP": "PL-32",
		// India: Chhattisgarh, Odisha, Telangana, Uttarakhand were recoded.
		"IN-CT": "IN-CG", "IN-OR": "IN-OD", "IN-TG": "IN-TS", "IN-UT": "IN-UK",
		// Mexico City.
		"MX-DIF": "MX-CMX",
		// South Africa: Gauteng and KwaZulu-Natal.
		"ZA-GT": "ZA-GP", "ZA-NL": "ZA-KZN",
		// Greece: Attica is GR-I.
		"GR-A1": "GR-I",
		// Iceland: Reykjavík belongs to the capital region IS-1.
		"IS-0": "IS-1",
		// Norway: pre-2020 counties mapped to the counties of 2024.
		"NO-01": "NO-31", "NO-02": "NO-32", "NO-04": "NO-34", "NO-05": "NO-34",
		"NO-06": "NO-33", "NO-07": "NO-39", "NO-08": "NO-40", "NO-09": "NO-42",
		"NO-10": "NO-42", "NO-12": "NO-46", "NO-14": "NO-46", "NO-16": "NO-50",
		"NO-17": "NO-50", "NO-19": "NO-55", "NO-20": "NO-56",
		// Serbia: the districts of Vojvodina belong to the province RS-VO.
		"RS-01": "RS-VO", "RS-02": "RS-VO", "RS-03": "RS-VO", "RS-04": "RS-VO",
		"RS-05": "RS-VO", "RS-06": "RS-VO", "RS-07": "RS-VO",
		// Bosnia and Herzegovina: Natural Earth leaves the regions of Republika
		// Srpska without ISO codes.
		"BA-X01~": "BA-SRP", "BA-X02~": "BA-SRP", "BA-X03~": "BA-SRP", "BA-X04~": "BA-SRP",
		"BA-X05~": "BA-SRP", "BA-X06~": "BA-SRP", "BA-X07~": "BA-SRP",
		// Equatorial Guinea: provinces → Región Insular / Región Continental.
		"GQ-AN": "GQ-I", "GQ-BN": "GQ-I", "GQ-BS": "GQ-I",
		"GQ-CS": "GQ-C", "GQ-KN": "GQ-C", "GQ-LI": "GQ-C", "GQ-WN": "GQ-C", "GQ-DJ": "GQ-C",
		// Ghana: the regions that the 2018 reform left unchanged keep their code;
		// the ones it split (BA, NP, TV, WP) have no current equivalent.
		"GH-BA": "", "GH-NP": "", "GH-TV": "", "GH-WP": "",
		// Belgium: provinces → regions.
		"BE-BRU": "BE-BRU",
		"BE-VAN": "BE-VLG", "BE-VBR": "BE-VLG", "BE-VLI": "BE-VLG", "BE-VOV": "BE-VLG", "BE-VWV": "BE-VLG",
		"BE-WBR": "BE-WAL", "BE-WHT": "BE-WAL", "BE-WLG": "BE-WAL", "BE-WLX": "BE-WAL", "BE-WNA": "BE-WAL",
		// Ireland: counties → provinces.
		"IE-CW": "IE-L", "IE-D": "IE-L", "IE-KE": "IE-L", "IE-KK": "IE-L", "IE-LS": "IE-L",
		"IE-LD": "IE-L", "IE-LH": "IE-L", "IE-MH": "IE-L", "IE-OY": "IE-L", "IE-WH": "IE-L",
		"IE-WX": "IE-L", "IE-WW": "IE-L",
		"IE-CE": "IE-M", "IE-CO": "IE-M", "IE-KY": "IE-M", "IE-LK": "IE-M", "IE-TA": "IE-M",
		"IE-WD": "IE-M",
		"IE-G":  "IE-C", "IE-LM": "IE-C", "IE-MO": "IE-C", "IE-RN": "IE-C", "IE-SO": "IE-C",
		"IE-CN": "IE-U", "IE-DL": "IE-U", "IE-MN": "IE-U",
	}
}

// byRegionName maps, per country, Natural Earth's "region" property (the
// parent of the admin-1 unit) to the ISO 3166-2 first-level code.
func byRegionName() map[string]map[string]string {
	return map[string]map[string]string{
		"ES": { // provinces → autonomous communities and cities
			"Andalucía": "ES-AN", "Aragón": "ES-AR", "Asturias": "ES-AS",
			"Canarias": "ES-CN", "Canary Is.": "ES-CN", "Cantabria": "ES-CB",
			"Castilla y León": "ES-CL", "Castilla-La Mancha": "ES-CM", "Cataluña": "ES-CT",
			"Ceuta": "ES-CE", "Extremadura": "ES-EX", "Foral de Navarra": "ES-NC",
			"Galicia": "ES-GA", "Islas Baleares": "ES-IB", "La Rioja": "ES-RI",
			"Madrid": "ES-MD", "Melilla": "ES-ML", "Murcia": "ES-MC",
			"País Vasco": "ES-PV", "Valenciana": "ES-VC",
		},
		"UG": { // districts → regions
			"Central": "UG-C", "Eastern": "UG-E", "Northern": "UG-N", "Western": "UG-W",
		},
		"MW": { // districts → regions
			"Northern": "MW-N", "Central": "MW-C", "Southern": "MW-S",
		},
		"BF": { // provinces → regions
			"Boucle du Mouhoun": "BF-01", "Cascades": "BF-02", "Centre": "BF-03",
			"Centre-Est": "BF-04", "Centre-Nord": "BF-05", "Centre-Ouest": "BF-06",
			"Centre-Sud": "BF-07", "Est": "BF-08", "Hauts-Bassins": "BF-09",
			"Nord": "BF-10", "Plateau-Central": "BF-11", "Sahel": "BF-12", "Sud-Ouest": "BF-13",
		},
		"AZ": { // Nakhchivan's districts → the autonomous republic
			"Naxçıvan Autonomous Republic": "AZ-NX",
		},
	}
}

// byName maps, per country, the feature name to its current ISO 3166-2 code,
// for countries whose codes ISO 3166-2 renumbered wholesale.
func byName() map[string]map[string]string {
	return map[string]map[string]string{
		"IR": { // renumbered IR-00 … IR-30
			"Markazi": "IR-00", "Gilan": "IR-01", "Mazandaran": "IR-02",
			"East Azarbaijan": "IR-03", "West Azarbaijan": "IR-04", "Kermanshah": "IR-05",
			"Khuzestan": "IR-06", "Fars": "IR-07", "Kerman": "IR-08",
			"Razavi Khorasan": "IR-09", "Esfahan": "IR-10", "Sistan and Baluchestan": "IR-11",
			"Kordestan": "IR-12", "Hamadan": "IR-13", "Chahar Mahall and Bakhtiari": "IR-14",
			"Lorestan": "IR-15", "Ilam": "IR-16", "Kohgiluyeh and Buyer Ahmad": "IR-17",
			"Bushehr": "IR-18", "Zanjan": "IR-19", "Semnan": "IR-20",
			"Yazd": "IR-21", "Hormozgan": "IR-22", "Tehran": "IR-23",
			"Ardebil": "IR-24", "Qom": "IR-25", "Qazvin": "IR-26",
			"Golestan": "IR-27", "North Khorasan": "IR-28", "South Khorasan": "IR-29",
			"Alborz": "IR-30",
		},
	}
}

// byRegionCode lists countries whose Natural Earth "region_cod" property is
// the ISO 3166-2 first-level parent of the feature (after replacing "." with
// "-" and applying regionCodFix).
func byRegionCode() map[string]bool {
	return map[string]bool{
		"CV": true, // municipalities → Barlavento / Sotavento
		"FR": true, // departments → regions (overseas departments keep their code)
		"GN": true, // prefectures → regions
		"GW": true, // regions → provinces
		"IT": true, // provinces → regions
		"KN": true, // parishes → Saint Kitts / Nevis
		"LK": true, // districts → provinces
		"PH": true, // provinces and cities → regions
	}
}

// byFeature fixes individual features by "iso_3166_2|name".
func byFeature() map[string][2]string {
	return map[string][2]string{
		// Natural Earth codes Posavina canton as Republika Srpska; it is in the
		// Federation of Bosnia and Herzegovina.
		"BA-SRP|Posavina": {"BA", "BA-BIH"},
		// Malawi districts without a "region" property.
		"MW-CT|Chitipa":  {"MW", "MW-N"},
		"MW-MH|Machinga": {"MW", "MW-S"},
		// Crimea and Sevastopol: ISO 3166 and the IP databases file them under UA.
		"UA-43|Crimea":     {"UA", "UA-43"},
		"UA-40|Sevastopol": {"UA", "UA-40"},
		// Natural Earth swaps Moscow city (RU-MOW) and Moscow oblast (RU-MOS).
		"RU-MOW|Moskovskaya": {"RU", "RU-MOS"},
		"RU-MOS|Moskva":      {"RU", "RU-MOW"},
		// Capital districts filed under their surrounding unit.
		"CO-CUN|Bogota":                {"CO", "CO-DC"},
		"PE-LIM|Lima Province":         {"PE", "PE-LMA"},
		"LA-VI|Vientiane [prefecture]": {"LA", "LA-VT"},
		"MV-12|Malé":                   {"MV", "MV-MLE"},
		"KZ-ALA|Almaty":                {"KZ", "KZ-ALM"},
		// Units filed under a neighbour's code.
		"SB-CH|Western":        {"SB", "SB-WE"},
		"SD-DS|Eastern Darfur": {"SD", "SD-DE"},
		// Australian external territories that have their own ISO 3166-1 code.
		"-99-X14~|Christmas Island":        {"CX", ""},
		"-99-X15~|Cocos (Keeling) Islands": {"CC", ""},
	}
}

// classify returns the country and first-level region of a feature. ok is
// false when the feature has no usable country code and must be dropped.
func (r *rules) classify(p properties) (country, region string, ok bool) {
	if fix, found := r.byFeature[p.ISO31662+"|"+p.Name]; found {
		return fix[0], fix[1], true
	}
	country = strings.ToUpper(strings.TrimSpace(p.ISOA2))
	if !countryPattern.MatchString(country) {
		return "", "", false
	}
	if _, found := r.countryOnly[country]; found {
		return country, "", true
	}
	code := strings.ToUpper(strings.TrimSpace(p.ISO31662))
	switch {
	case country == "GB":
		region = r.gbNations[p.GeoNUnit]
	case country == "FR" && p.TypeEn == "Overseas department":
		region = code
	case r.byRegionCode[country]:
		region = strings.ReplaceAll(strings.ToUpper(p.RegionCod), ".", "-")
		if fixed, found := r.regionCodFix[region]; found {
			region = fixed
		}
	case r.byName[country] != nil:
		region = r.byName[country][p.Name]
	case r.byRegionName[country] != nil:
		var found bool
		if region, found = r.byRegionName[country][p.Region]; !found && country == "AZ" {
			region = code
		}
	default:
		region = code
		if recoded, found := r.isoRecode[code]; found {
			region = recoded
		}
	}
	if !validRegion(country, region) {
		region = ""
	}
	return country, region, true
}

// validRegion reports whether region is a well-formed first-level code of
// country.
func validRegion(country, region string) bool {
	return regionPattern.MatchString(region) && strings.HasPrefix(region, country+"-")
}
