package health

import (
	"context"
	"log/slog"
	"math"
	"strings"
	"time"

	"github.com/lpmtls/lpmtls/shared/certificates"
	"github.com/lpmtls/lpmtls/shared/lp"
)

// Metric and dimension names of the certificate expiry watch.
const (
	MetricDaysToExpiry   = "CertificateDaysToExpiry"
	MetricExpiringSoon   = "CertificatesExpiringSoon"
	MetricUnavailable    = "CertificatesUnavailable"
	MetricExpiryUnknown  = "CertificatesExpiryUnknown"
	DimensionCertificate = "CertificateName"
	// DefaultWarningDays is the warning window when Checker.WarningDays is 0.
	DefaultWarningDays = 30
)

// CertificateLister lists the account's certificates; *certificates.Service satisfies it.
type CertificateLister interface {
	List(ctx context.Context) (*certificates.Result, error)
}

// CertificateSummary is the expiry watch's part of a Summary.
type CertificateSummary struct {
	WarningDays int `json:"warningDays"`
	Listed      int `json:"listed"`
	// ExpiringSoon counts certificates whose known expiry is within WarningDays (or
	// past); Unavailable those whose status is not Available; ExpiryUnknown those
	// whose expiry is known from nowhere (LivePerson gave none in a form we read and
	// apply left no matching record in SSM), which therefore cannot count as expiring
	// soon.
	ExpiringSoon  int               `json:"expiringSoon"`
	Unavailable   int               `json:"unavailable"`
	ExpiryUnknown int               `json:"expiryUnknown"`
	Failed        bool              `json:"failed"`
	Error         *ErrorInfo        `json:"error"`
	Items         []CertificateItem `json:"items"`
}

// CertificateItem is one certificate as the watch saw it.
type CertificateItem struct {
	ID        lp.CertificateID `json:"id"`
	Name      string           `json:"name"`
	Status    string           `json:"status"`
	Available bool             `json:"available"`
	// ExpiresAt and DaysToExpiry are null when the expiry is unknown.
	ExpiresAt    *time.Time `json:"expiresAt"`
	DaysToExpiry *float64   `json:"daysToExpiry"`
	ExpiringSoon bool       `json:"expiringSoon"`
	// ExpirySource is where the expiry came from: ExpiryFromLivePerson,
	// ExpiryFromRecord, or "" when it is unknown.
	ExpirySource string `json:"expirySource,omitempty"`
}

// Where an expiry came from.
const (
	ExpiryFromLivePerson = "liveperson"
	// ExpiryFromRecord is the p12's NotAfter, recorded in SSM by lpmtls apply.
	ExpiryFromRecord = "record"
)

// assessCertificates turns the list into the summary: an expiry at or before
// now+window counts as expiring soon (an expired certificate is the extreme case), an
// unknown one never does. LivePerson's expiry wins; the record stands in for it only
// where LivePerson gave none.
func assessCertificates(res *certificates.Result, now time.Time, warningDays int) *CertificateSummary {
	certs := res.Certificates
	window := time.Duration(warningDays) * 24 * time.Hour
	s := &CertificateSummary{WarningDays: warningDays, Listed: len(certs), Items: make([]CertificateItem, 0, len(certs))}
	for _, c := range certs {
		it := CertificateItem{ID: c.ID, Name: certificateName(c), Status: c.Status, Available: c.Available()}
		if !it.Available {
			s.Unavailable++
		}
		exp, src := c.ExpiresAt, ExpiryFromLivePerson
		if rec, ok := res.Recorded[c.ID]; ok && exp.IsZero() {
			exp, src = rec.NotAfter, ExpiryFromRecord
		}
		if exp.IsZero() {
			s.ExpiryUnknown++
		} else {
			at := exp.UTC()
			it.ExpirySource = src
			left := at.Sub(now)
			// Two decimals: a quarter of an hour is finer than any alarm needs, and the
			// value stays readable in the console.
			days := math.Round(left.Hours()/24*100) / 100
			it.ExpiresAt, it.DaysToExpiry = &at, &days
			if left <= window {
				it.ExpiringSoon = true
				s.ExpiringSoon++
			}
		}
		s.Items = append(s.Items, it)
	}
	return s
}

// certificateName is the CertificateName dimension: LivePerson's unique name, else the
// display name, else the id, so a data point is never published under an empty
// dimension (which CloudWatch would drop).
func certificateName(c lp.Certificate) string {
	for _, n := range []string{c.Name, c.DisplayName} {
		if n = strings.TrimSpace(n); n != "" {
			return n
		}
	}
	return "id " + string(c.ID)
}

// logCertificates writes one line per certificate: WARN for one that needs action
// (expiring soon, unavailable) and for one whose expiry is unknown, since the watch
// cannot see it coming.
func (c *Checker) logCertificates(ctx context.Context, log *slog.Logger, res *certificates.Result, s *CertificateSummary) {
	account, certs := res.AccountID, res.Certificates
	if res.RecordErr != nil {
		log.WarnContext(ctx, "certificate expiry records could not be read from SSM; the certificates concerned count as "+
			MetricExpiryUnknown, "account", account, "error", res.RecordErr.Error())
	}
	for i, it := range s.Items {
		if it.DaysToExpiry == nil {
			attrs := []any{"account", account, "certificate", it.Name, "certificateId", string(it.ID), "status", it.Status}
			if raw := certs[i].ExpirationRaw; raw != "" {
				attrs = append(attrs, "expirationDate", raw)
			}
			log.WarnContext(ctx, "certificate expiry unknown: LivePerson gave no readable expirationDate and lpmtls apply "+
				"left no record of this certificate under LP_CACHE_PARAMETER_PREFIX, so no "+MetricDaysToExpiry+
				" data point and it cannot count as expiring soon; it counts in "+MetricExpiryUnknown, attrs...)
			continue
		}
		level := slog.LevelInfo
		if it.ExpiringSoon || !it.Available {
			level = slog.LevelWarn
		}
		log.Log(ctx, level, "certificate expiry", "account", account, "certificate", it.Name,
			"certificateId", string(it.ID), "status", it.Status, "expiresAt", it.ExpiresAt.Format(time.RFC3339),
			"daysToExpiry", *it.DaysToExpiry, "expiringSoon", it.ExpiringSoon, "expirySource", it.ExpirySource)
	}
	log.InfoContext(ctx, "certificate expiry check done", "account", account, "certificates", s.Listed,
		"warningDays", s.WarningDays, "certificatesExpiringSoon", s.ExpiringSoon,
		"certificatesUnavailable", s.Unavailable, "certificatesExpiryUnknown", s.ExpiryUnknown)
}

// CertificateDocuments are the per-certificate EMF documents: one per certificate of
// known expiry, since a document carries one value per dimension and each certificate
// is its own CertificateName. A certificate of unknown expiry has none: a made-up
// number would either hide it or alarm on nothing.
func (c *Checker) CertificateDocuments(s Summary) []EMF { return c.certificateDocuments(s, c.now()) }

func (c *Checker) certificateDocuments(s Summary, now time.Time) []EMF {
	if s.Certificates == nil || s.Certificates.Failed || s.AccountID == "" {
		return nil
	}
	var docs []EMF
	for _, it := range s.Certificates.Items {
		if it.DaysToExpiry == nil {
			continue
		}
		d := c.baseDocument(now, "certificate expiry metric")
		d.DimensionSets = [][]string{{DimensionFunction, DimensionAccount, DimensionCertificate}}
		d.Dimensions[DimensionAccount] = s.AccountID
		d.Dimensions[DimensionCertificate] = it.Name
		d.Metrics = []Metric{{Name: MetricDaysToExpiry, Value: *it.DaysToExpiry}}
		d.Properties["certificateId"] = string(it.ID)
		d.Properties["status"] = it.Status
		d.Properties["expiresAt"] = it.ExpiresAt.Format(time.RFC3339)
		d.Properties["expirySource"] = it.ExpirySource
		docs = append(docs, d)
	}
	return docs
}

func (c *Checker) warningDays() int {
	if c.WarningDays > 0 {
		return c.WarningDays
	}
	return DefaultWarningDays
}
