package session

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/lpmtls/lpmtls/shared/lp"
)

// storedDomains is the JSON kept in {Prefix}/{acct}/domains. FetchedAt travels with
// the domains so every environment ages them from the same discovery.
type storedDomains struct {
	Domains   lp.Domains `json:"domains"`
	FetchedAt time.Time  `json:"fetchedAt"`
}

func encodeDomains(d lp.Domains, at time.Time) string {
	b, _ := json.Marshal(storedDomains{Domains: d, FetchedAt: at.UTC()})
	return string(b)
}

func (m *Manager) storeGet(ctx context.Context, name string) (string, bool, error) {
	m.storeGets.Add(1)
	return m.o.Store.Get(ctx, name)
}

func (m *Manager) storePut(ctx context.Context, name, value string, secure, overwrite bool) error {
	m.storePuts.Add(1)
	return m.o.Store.Put(ctx, name, value, secure, overwrite)
}

func (m *Manager) storeDelete(ctx context.Context, name string) error {
	m.storeDeletes.Add(1)
	return m.o.Store.Delete(ctx, name)
}

// storeGetToken reads the shared token. A value that does not parse is reported as
// not found (and logged): it will be overwritten by the next login.
func (m *Manager) storeGetToken(ctx context.Context, name string) (storedToken, bool, error) {
	v, found, err := m.storeGet(ctx, name)
	if err != nil || !found {
		return storedToken{}, false, err
	}
	var t storedToken
	if err := json.Unmarshal([]byte(v), &t); err != nil || t.Bearer == "" {
		// The value is secret: say only that it is malformed.
		m.o.Logger.WarnContext(ctx, "ignoring malformed token parameter", "parameter", name)
		return storedToken{}, false, nil
	}
	return t, true, nil
}

func (m *Manager) storeGetDomains(ctx context.Context, name string) (storedDomains, bool, error) {
	v, found, err := m.storeGet(ctx, name)
	if err != nil || !found {
		return storedDomains{}, false, err
	}
	var d storedDomains
	if err := json.Unmarshal([]byte(v), &d); err != nil {
		m.o.Logger.WarnContext(ctx, "ignoring malformed domains parameter", "parameter", name, "err", err)
		return storedDomains{}, false, nil
	}
	return d, true, nil
}

// maxElections bounds how often obtainToken goes back to the lease election after a
// holder vanished without publishing a token.
const maxElections = 3

// obtainToken gets a new token by logging in, coordinating with other processes
// through the lease so that a burst of cold starts logs in once: the lease winner
// logs in and publishes; the others poll the token parameter and, when the lease
// disappears without a token (the holder's login failed), stand for election again.
// All waiting together is bounded by LeaseTTL and half of the time left on ctx; past
// that, or after maxElections, a process logs in itself.
func (m *Manager) obtainToken(ctx context.Context, acct string, d lp.Domains) (storedToken, error) {
	if m.o.Store == nil {
		return m.login(ctx, d)
	}
	leaseName := m.param(acct, "lease")
	tokenName := m.param(acct, "token")
	budget := m.o.LeaseTTL
	if dl, ok := ctx.Deadline(); ok {
		if half := time.Until(dl) / 2; half < budget {
			budget = half
		}
	}
	for range maxElections {
		now := m.o.Now()
		value := m.holder + " " + strconv.FormatInt(now.Add(m.o.LeaseTTL).UnixMilli(), 10)
		err := m.storePut(ctx, leaseName, value, false, false)
		switch {
		case err == nil:
			// An instance may have published its token and released its lease between our
			// token read and this Put: one more read saves a login in a cold-start storm.
			if t, found, gerr := m.storeGetToken(ctx, tokenName); gerr == nil && found && m.usable(t, m.o.Now()) {
				m.releaseLease(ctx, leaseName)
				return t, nil
			}
			return m.publishLogin(ctx, acct, d, tokenName, leaseName)
		case !m.o.IsExists(err):
			m.warnStore(ctx, "put", leaseName, err)
			return m.publishLogin(ctx, acct, d, tokenName, "")
		}
		other, found, gerr := m.storeGet(ctx, leaseName)
		switch {
		case gerr != nil:
			m.warnStore(ctx, "get", leaseName, gerr)
			return m.publishLogin(ctx, acct, d, tokenName, "")
		case !found:
			// The holder finished between our Put and Get: its token should be there; if
			// not, its login failed and the election is open again.
			if t, found, gerr := m.storeGetToken(ctx, tokenName); gerr == nil && found && m.usable(t, m.o.Now()) {
				return t, nil
			}
			continue
		}
		exp, ok := parseLease(other)
		if ok && now.Before(exp) {
			t, res := m.waitForToken(ctx, tokenName, leaseName, &budget, exp.Sub(now))
			switch res {
			case waitGotToken:
				return t, nil
			case waitLeaseGone:
				continue
			}
			m.o.Logger.WarnContext(ctx, "login lease holder published no token in time; logging in", "account", acct)
			return m.publishLogin(ctx, acct, d, tokenName, "")
		}
		// Stale (its holder died or froze): take it over. Two processes doing this at
		// once both log in, which is the pre-lease behaviour, not an error.
		if err := m.storePut(ctx, leaseName, value, false, true); err != nil {
			m.warnStore(ctx, "put", leaseName, err)
			return m.publishLogin(ctx, acct, d, tokenName, "")
		}
		return m.publishLogin(ctx, acct, d, tokenName, leaseName)
	}
	m.o.Logger.WarnContext(ctx, "login lease changed hands without a token several times; logging in", "account", acct)
	return m.publishLogin(ctx, acct, d, tokenName, "")
}

// publishLogin logs in, stores the token (SecureString) and releases the lease if
// this process holds it. The token is written before the lease is deleted so that
// pollers never see "no lease, no token" after a successful login. The delete does not
// check the holder: if our lease was taken over as stale, deleting the newer one costs
// at most a login.
func (m *Manager) publishLogin(ctx context.Context, acct string, d lp.Domains, tokenName, leaseName string) (storedToken, error) {
	tok, err := m.login(ctx, d)
	if err == nil {
		b, _ := json.Marshal(tok)
		if perr := m.storePut(ctx, tokenName, string(b), true, true); perr != nil {
			m.warnStore(ctx, "put", tokenName, perr)
		}
	}
	if leaseName != "" {
		// Released even when the login failed, so others need not wait out the TTL.
		m.releaseLease(ctx, leaseName)
	}
	return tok, err
}

// releaseLease deletes our lease even when ctx is done (others would otherwise wait
// out its TTL), but no longer than a lease lives: a stalled call must not keep the
// refresh, and with it every caller, waiting.
func (m *Manager) releaseLease(ctx context.Context, leaseName string) {
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), m.o.LeaseTTL)
	defer cancel()
	if err := m.storeDelete(dctx, leaseName); err != nil {
		m.warnStore(ctx, "delete", leaseName, err)
	}
}

type waitResult int

const (
	waitTimedOut waitResult = iota
	waitGotToken
	waitLeaseGone
)

// waitForToken polls the token parameter with growing pauses until a usable token
// appears, the lease disappears without one, or the wait runs out: at most leaseLeft
// and what is left of *budget, which it consumes. The pauses are planned from the
// budget, so the loop ends even with a frozen clock.
func (m *Manager) waitForToken(ctx context.Context, tokenName, leaseName string, budget *time.Duration, leaseLeft time.Duration) (storedToken, waitResult) {
	limit := min(*budget, leaseLeft)
	var waited time.Duration
	defer func() { *budget -= waited }()
	// Doubling from a short first pause keeps each pause at about half the time waited
	// so far, so a waiter sees the token within about one login round trip of it being
	// published, while a storm of waiters stays within SSM's default GetParameter rate.
	const first, maxPause = 25 * time.Millisecond, 200 * time.Millisecond
	pause := first
	for {
		pause = max(min(pause, limit-waited), 0)
		if pause > 0 {
			select {
			case <-m.after(pause):
			case <-ctx.Done():
				return storedToken{}, waitTimedOut
			}
		}
		waited += pause
		t, found, err := m.storeGetToken(ctx, tokenName)
		if err != nil {
			// Throttling is likely in a storm (the SDK has already retried): keep
			// waiting rather than add a login to the storm.
			m.warnStore(ctx, "get", tokenName, err)
		} else if found && m.usable(t, m.o.Now()) {
			return t, waitGotToken
		} else {
			// No usable token yet: if the lease is gone too, its holder gave up (a
			// failed login releases the lease without publishing a token).
			_, held, lerr := m.storeGet(ctx, leaseName)
			if lerr == nil && !held {
				return storedToken{}, waitLeaseGone
			}
		}
		if waited >= limit {
			return storedToken{}, waitTimedOut
		}
		pause = min(pause*2, maxPause)
	}
}

func parseLease(v string) (time.Time, bool) {
	_, ms, ok := strings.Cut(strings.TrimSpace(v), " ")
	if !ok {
		return time.Time{}, false
	}
	n, err := strconv.ParseInt(ms, 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	return time.UnixMilli(n), true
}

func newHolderID() string {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return fmt.Sprintf("pid-%d", time.Now().UnixNano())
	}
	return hex.EncodeToString(b[:])
}
