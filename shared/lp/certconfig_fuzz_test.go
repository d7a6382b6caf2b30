package lp

import (
	"context"
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

func FuzzListMappingObjects(f *testing.F) {
	seedAnswers(f, 200, "mapping_objects_ok.json")
	seedAnswers(f, 404, "error_toplevel.json")
	f.Add(200, []byte(`[{"id":1,"serviceId":{},"url":"x"}]`))
	f.Add(200, []byte(`[{"id":"8","certificationId":7,"serviceId":2,"enable":true},null,{"deleted":true}]`))
	f.Add(200, []byte(`{"id":1}`))
	c, lp := newCanned(f)
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		status = fuzzStatus(status)
		c.set(status, body)
		out, _, err := lp.c.ListMappingObjects(context.Background(), lp.auth("90412233"))
		if err != nil {
			checkAPIKind(t, typedError(t, err, testBearer), status)
			return
		}
		var items []json.RawMessage
		if json.Unmarshal(trimBOM(body), &items) != nil || status > 299 || len(out) > len(items) {
			t.Fatalf("HTTP %d %q accepted as %+v", status, body, out)
		}
		for _, m := range out {
			if m.Deleted {
				t.Fatalf("deleted mapping listed: %+v", m)
			}
			// What an update would send reads back the same.
			b, err := json.Marshal(m)
			if err != nil {
				t.Fatalf("cannot write %+v: %v", m, err)
			}
			var again MappingObject
			if err := json.Unmarshal(b, &again); err != nil || !reflect.DeepEqual(again, m) {
				t.Fatalf("round trip %+v -> %s -> %+v (%v)", m, b, again, err)
			}
		}
	})
}

func FuzzUploadAnswer(f *testing.F) {
	seedAnswers(f, 201, "upload_ok_null_expiry.json", "upload_vault_failed.json")
	seedAnswers(f, 400, "error_wrapper.json")
	f.Add(201, []byte(`{"successfullySavedCertificates":[{"id":"1","name":"a","expirationDate":"2030-01-01"}]}`))
	f.Add(200, []byte(`{"successfulySavedCertificates":null}`))
	f.Add(409, []byte(`{"message":"`+testP12Password+`"}`))
	notAfter := time.Date(2031, 1, 2, 3, 4, 5, 0, time.UTC)
	file := testP12(f, notAfter)
	c, lp := newCanned(f)
	up := CertificateUpload{Name: "a", Password: testP12Password, P12: file}
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		status = fuzzStatus(status)
		c.set(status, body)
		cert, err := lp.c.UploadCertificate(context.Background(), lp.auth("90412233"), up)
		if err != nil {
			checkAPIKind(t, typedError(t, err, testBearer, testP12Password), status)
			return
		}
		if status > 299 {
			t.Fatalf("HTTP %d accepted as %+v", status, cert)
		}
		// The expiry is always known: LivePerson's, or the p12's.
		if cert.ExpiresAt.IsZero() {
			t.Fatalf("upload %q gave no expiry: %+v", body, cert)
		}
	})
}
