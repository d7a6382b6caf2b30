package config

import (
	"encoding/json"
	"regexp"
	"strconv"
	"strings"

	"github.com/lpmtls/lpmtls/shared/lp"
)

// Settings of the mTLS configuration calls (certificates and mapping objects) whose
// shape LivePerson leaves UNCONFIRMED; the lpmtls CLI uses them, the functions do not.
type MTLSConfig struct {
	// MappingObjectsPath is LP_MAPPING_OBJECTS_PATH: the ac-common collection, with
	// {accountId}; one object is the path plus /{id}. Default lp.DefaultMappingObjectsPath.
	MappingObjectsPath string
	// MappingObjectsVersion is LP_MAPPING_OBJECTS_VERSION, the "v" query value ("-"
	// for none); default "3.0".
	MappingObjectsVersion string
	// ServiceIDs is LP_SERVICE_IDS, a JSON object {"NAME":"id"} replacing the default
	// services table (TEST_SERVICE 0, IDP 1, WEBHOOKS 2, FAAS 3).
	ServiceIDs map[string]string
	// ActivateFlagInBody is LP_ACTIVATE_FLAG_IN_BODY: send isValidateUrlEnabled in the
	// activate body instead of the query.
	ActivateFlagInBody bool
}

var serviceIDRE = regexp.MustCompile(`^[0-9A-Za-z_-]{1,20}$`)

func (l *loader) mtls(c *Config) {
	m := &c.MTLS
	m.MappingObjectsPath = l.str("LP_MAPPING_OBJECTS_PATH", "")
	if p := m.MappingObjectsPath; p != "" && (!strings.HasPrefix(p, "/") || !strings.Contains(p, "{accountId}") || strings.ContainsAny(p, "?#")) {
		l.fail("LP_MAPPING_OBJECTS_PATH", "must start with /, contain {accountId} and have no query")
	}
	m.MappingObjectsVersion = l.str("LP_MAPPING_OBJECTS_VERSION", "")
	if raw := l.str("LP_SERVICE_IDS", ""); raw != "" {
		var ids map[string]string
		if err := json.Unmarshal([]byte(raw), &ids); err != nil || len(ids) == 0 {
			l.fail("LP_SERVICE_IDS", `must be a non-empty JSON object of service names to ids, e.g. {"WEBHOOKS":"2"}`)
		} else {
			for name, id := range ids {
				if !lp.ValidServiceName(name) || !serviceIDRE.MatchString(id) {
					l.fail("LP_SERVICE_IDS", "entry %q: names are 1-100 letters, digits, _ . -; ids 1-20 letters or digits", name)
				}
			}
			m.ServiceIDs = ids
		}
	}
	if s := l.str("LP_ACTIVATE_FLAG_IN_BODY", ""); s != "" {
		b, err := strconv.ParseBool(s)
		if err != nil {
			l.fail("LP_ACTIVATE_FLAG_IN_BODY", "%q is not true or false", s)
		}
		m.ActivateFlagInBody = b
	}
}
