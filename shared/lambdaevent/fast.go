package lambdaevent

import (
	"strconv"
	"strings"
	"unicode/utf8"
	"unsafe"

	"github.com/aws/aws-lambda-go/events"
)

// fastHTTP decodes the shape API Gateway sends (names as documented, plain strings, an
// IAM authorizer or none) into e without reflection, reading doc, which it owns: the
// event's strings share its memory. It reports false as soon as anything could read
// differently to encoding/json (a name in other letter cases or escaped, a name twice,
// a string with escapes or invalid UTF-8, a type other than the field's, a null where
// encoding/json would store something, a JWT or Lambda authorizer);
// the caller then decodes doc with encoding/json instead, into a fresh event, which also
// reports what is not JSON.
func fastHTTP(doc []byte, e *events.APIGatewayV2HTTPRequest) bool {
	d := fastDecoder{doc: doc, ok: true}
	s := scanner{b: doc}
	s.ws()
	if s.i >= len(doc) || doc[s.i] != '{' {
		return false
	}
	d.object(&s, topNames, func(k int, v span) {
		switch k {
		case 0:
			e.Version = d.str(v)
		case 1:
			e.RouteKey = d.str(v)
		case 2:
			e.RawPath = d.str(v)
		case 3:
			e.RawQueryString = d.str(v)
		case 4:
			e.Cookies = d.strs(v)
		case 5:
			e.Headers = d.strMap(v)
		case 6:
			e.QueryStringParameters = d.strMap(v)
		case 7:
			e.PathParameters = d.strMap(v)
		case 8:
			d.requestContext(v, &e.RequestContext)
		case 9:
			e.StageVariables = d.strMap(v)
		case 10:
			e.Body = d.str(v)
		case 11:
			e.IsBase64Encoded = d.boolean(v)
		}
	})
	s.ws()
	return d.ok && s.i == len(doc)
}

// The JSON names of the fields decoded, as aws-lambda-go's tags spell them.
var (
	topNames = []string{"version", "routeKey", "rawPath", "rawQueryString", "cookies", "headers",
		"queryStringParameters", "pathParameters", "requestContext", "stageVariables", "body", "isBase64Encoded"}
	contextNames = []string{"routeKey", "accountId", "stage", "requestId", "authorizer", "apiId",
		"domainName", "domainPrefix", "time", "timeEpoch", "http", "authentication"}
	httpNames           = []string{"method", "path", "protocol", "sourceIp", "userAgent"}
	authorizerNames     = []string{"jwt", "lambda", "iam"}
	iamNames            = []string{"accessKey", "accountId", "callerId", "cognitoIdentity", "principalOrgId", "userArn", "userId"}
	cognitoNames        = []string{"amr", "identityId", "identityPoolId"}
	authenticationNames = []string{"clientCert"}
	clientCertNames     = []string{"clientCertPem", "issuerDN", "serialNumber", "subjectDN", "validity"}
	validityNames       = []string{"notAfter", "notBefore"}
)

type fastDecoder struct {
	doc []byte
	ok  bool
}

// object walks the object at s, calling each with the index in names of every member
// whose name is one of them exactly; a null value is skipped, as encoding/json leaves
// a field as it is for null (and every field here is still zero: a name seen twice
// fails). A name that differs from one of names only in letter case would be that
// field to encoding/json: it fails, as does an escaped name. Other names are ignored.
func (d *fastDecoder) object(s *scanner, names []string, each func(k int, v span)) {
	var seen uint32
	walked := s.object(func(m member) {
		if !d.ok {
			return
		}
		if m.escaped {
			d.ok = false
			return
		}
		name := d.doc[m.key.start+1 : m.key.end-1]
		k := -1
		for i, n := range names {
			if string(name) == n {
				k = i
				break
			}
			if strings.EqualFold(string(name), n) {
				d.ok = false
				return
			}
		}
		if k < 0 {
			return
		}
		if seen&(1<<k) != 0 {
			d.ok = false
			return
		}
		seen |= 1 << k
		if d.doc[m.val.start] == 'n' {
			return
		}
		each(k, m.val)
	})
	d.ok = d.ok && walked
}

// sub walks the object at v with names, or fails when v is not an object.
func (d *fastDecoder) sub(v span, names []string, each func(k int, v span)) {
	if !d.ok {
		return
	}
	if d.doc[v.start] != '{' {
		d.ok = false
		return
	}
	s := scanner{b: d.doc[:v.end], i: v.start}
	d.object(&s, names, each)
}

// str is the string at v, sharing doc's memory, when it reads the same raw as decoded.
func (d *fastDecoder) str(v span) string {
	if !d.ok || d.doc[v.start] != '"' {
		d.ok = false
		return ""
	}
	raw := d.doc[v.start+1 : v.end-1]
	s := scanner{b: d.doc[:v.end], i: v.start}
	escaped, ascii, _ := s.str()
	if escaped || !ascii && !utf8.Valid(raw) {
		d.ok = false
		return ""
	}
	return unsafe.String(unsafe.SliceData(raw), len(raw))
}

func (d *fastDecoder) boolean(v span) bool {
	switch d.doc[v.start] {
	case 't':
		return true
	case 'f':
		return false
	}
	d.ok = false
	return false
}

// strMap is an object of strings; encoding/json makes an empty map for {}.
func (d *fastDecoder) strMap(v span) map[string]string {
	if !d.ok || d.doc[v.start] != '{' {
		d.ok = false
		return nil
	}
	m := make(map[string]string, 16)
	s := scanner{b: d.doc[:v.end], i: v.start}
	walked := s.object(func(mb member) {
		if !d.ok {
			return
		}
		if mb.escaped {
			d.ok = false
			return
		}
		key := d.str(mb.key)
		val := d.str(mb.val) // null, which encoding/json stores as "", fails here
		m[key] = val
	})
	d.ok = d.ok && walked
	return m
}

// strs is an array of strings; encoding/json makes an empty slice for [].
func (d *fastDecoder) strs(v span) []string {
	if !d.ok || d.doc[v.start] != '[' {
		d.ok = false
		return nil
	}
	out := []string{}
	s := scanner{b: d.doc[:v.end], i: v.start}
	walked := s.array(func(el span) {
		out = append(out, d.str(el))
	})
	d.ok = d.ok && walked
	return out
}

// int64 is a number without fraction or exponent that fits, as encoding/json takes it.
func (d *fastDecoder) int64(v span) int64 {
	raw := d.doc[v.start:v.end]
	n, err := strconv.ParseInt(unsafe.String(unsafe.SliceData(raw), len(raw)), 10, 64)
	if err != nil {
		d.ok = false
	}
	return n
}

func (d *fastDecoder) requestContext(v span, c *events.APIGatewayV2HTTPRequestContext) {
	d.sub(v, contextNames, func(k int, v span) {
		switch k {
		case 0:
			c.RouteKey = d.str(v)
		case 1:
			c.AccountID = d.str(v)
		case 2:
			c.Stage = d.str(v)
		case 3:
			c.RequestID = d.str(v)
		case 4:
			c.Authorizer = d.authorizer(v)
		case 5:
			c.APIID = d.str(v)
		case 6:
			c.DomainName = d.str(v)
		case 7:
			c.DomainPrefix = d.str(v)
		case 8:
			c.Time = d.str(v)
		case 9:
			c.TimeEpoch = d.int64(v)
		case 10:
			d.sub(v, httpNames, func(k int, v span) {
				f := [...]*string{&c.HTTP.Method, &c.HTTP.Path, &c.HTTP.Protocol, &c.HTTP.SourceIP, &c.HTTP.UserAgent}
				*f[k] = d.str(v)
			})
		case 11:
			d.authentication(v, &c.Authentication)
		}
	})
}

// authentication is API Gateway's mTLS client certificate (a PEM's line breaks are
// escapes, which fail: encoding/json's).
func (d *fastDecoder) authentication(v span, a *events.APIGatewayV2HTTPRequestContextAuthentication) {
	d.sub(v, authenticationNames, func(_ int, v span) {
		c := &a.ClientCert
		d.sub(v, clientCertNames, func(k int, v span) {
			if k == 4 {
				d.sub(v, validityNames, func(k int, v span) {
					*[...]*string{&c.Validity.NotAfter, &c.Validity.NotBefore}[k] = d.str(v)
				})
				return
			}
			*[...]*string{&c.ClientCertPem, &c.IssuerDN, &c.SerialNumber, &c.SubjectDN}[k] = d.str(v)
		})
	})
}

func (d *fastDecoder) authorizer(v span) *events.APIGatewayV2HTTPRequestContextAuthorizerDescription {
	a := new(events.APIGatewayV2HTTPRequestContextAuthorizerDescription)
	d.sub(v, authorizerNames, func(k int, v span) {
		if k != 2 {
			d.ok = false // JWT or Lambda authorizer: encoding/json's
			return
		}
		iam := new(events.APIGatewayV2HTTPRequestContextAuthorizerIAMDescription)
		a.IAM = iam
		d.sub(v, iamNames, func(k int, v span) {
			if k == 3 {
				ci := &iam.CognitoIdentity
				d.sub(v, cognitoNames, func(k int, v span) {
					if k == 0 {
						ci.AMR = d.strs(v)
						return
					}
					*[...]*string{nil, &ci.IdentityID, &ci.IdentityPoolID}[k] = d.str(v)
				})
				return
			}
			*[...]*string{&iam.AccessKey, &iam.AccountID, &iam.CallerID, nil, &iam.PrincipalOrgID, &iam.UserARN, &iam.UserID}[k] = d.str(v)
		})
	})
	return a
}
