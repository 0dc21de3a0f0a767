package sign

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"

	"github.com/secure-systems-lab/go-securesystemslib/dsse"
)

// PayloadTypeInToto is the DSSE payload type of an in-toto statement.
const PayloadTypeInToto = "application/vnd.in-toto+json"

// maxEnvelope bounds what ParseEnvelope reads: a provenance is a few KiB, an SBOM of a big
// service a few MiB.
const maxEnvelope = 32 << 20

// ErrEnvelope is wrapped by errors about an envelope that is not well-formed DSSE.
var ErrEnvelope = errors.New("sign: not a DSSE envelope")

// Envelope is a DSSE envelope (github.com/secure-systems-lab/dsse envelope.md): the payload
// and its type, base64-encoded, and signatures over their pre-authentication encoding.
type Envelope struct {
	PayloadType string              `json:"payloadType"`
	Payload     string              `json:"payload"`
	Signatures  []EnvelopeSignature `json:"signatures"`
}

// EnvelopeSignature is one signature of an envelope; KeyID names the signing key (paved
// writes its key id; the DSSE spec makes it optional).
type EnvelopeSignature struct {
	KeyID string `json:"keyid,omitempty"`
	Sig   string `json:"sig"`
}

// ParseEnvelope reads a DSSE envelope and checks its shape: a payload type, a payload and at
// least one signature, all base64 where the spec says so. It does not check signatures.
func ParseEnvelope(data []byte) (*Envelope, error) {
	if len(data) > maxEnvelope {
		return nil, fmt.Errorf("%w: %d bytes, over the %d this reader takes", ErrEnvelope, len(data), maxEnvelope)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	var env Envelope
	if err := dec.Decode(&env); err != nil {
		return nil, fmt.Errorf("%w: %s", ErrEnvelope, jsonError(data, err))
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%w: text follows the JSON object", ErrEnvelope)
	}
	if _, _, err := env.decode(); err != nil {
		return nil, err
	}
	return &env, nil
}

// decode returns the payload and signature bytes after checking the envelope's shape.
func (e *Envelope) decode() ([]byte, [][]byte, error) {
	if e.PayloadType == "" {
		return nil, nil, fmt.Errorf("%w: payloadType is empty", ErrEnvelope)
	}
	payload, err := b64(e.Payload)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: payload is not base64", ErrEnvelope)
	}
	if len(e.Signatures) == 0 {
		return nil, nil, fmt.Errorf("%w: it has no signatures", ErrEnvelope)
	}
	sigs := make([][]byte, len(e.Signatures))
	for i, s := range e.Signatures {
		if sigs[i], err = b64(s.Sig); err != nil || len(sigs[i]) == 0 {
			return nil, nil, fmt.Errorf("%w: signature %d is not base64", ErrEnvelope, i+1)
		}
	}
	return payload, sigs, nil
}

// PayloadBytes is the decoded payload; call it on an envelope ParseEnvelope returned.
func (e *Envelope) PayloadBytes() ([]byte, error) {
	p, _, err := e.decode()
	return p, err
}

// b64 decodes standard or URL-safe base64, as the DSSE spec asks of readers.
func b64(s string) ([]byte, error) {
	if b, err := base64.StdEncoding.DecodeString(s); err == nil {
		return b, nil
	}
	return base64.URLEncoding.DecodeString(s)
}

// pae is the DSSE pre-authentication encoding, the bytes that are signed.
func pae(payloadType string, payload []byte) []byte { return dsse.PAE(payloadType, payload) }

// jsonError says where in data a JSON error is, as line:col.
func jsonError(data []byte, err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	off := int64(-1)
	switch {
	case errors.As(err, &se):
		off = se.Offset
	case errors.As(err, &te):
		off = te.Offset
	}
	if off < 0 {
		return err.Error()
	}
	msg := err.Error()
	if te != nil {
		msg = typeError(te)
	}
	line, col := 1, 1
	for _, c := range data[:min(int(off), len(data))] {
		if c == '\n' {
			line++
			col = 1
		} else {
			col++
		}
	}
	return fmt.Sprintf("%d:%d: %s", line, col, msg)
}

// typeError says which field had the wrong JSON type, in JSON's words rather than Go's.
func typeError(te *json.UnmarshalTypeError) string {
	want := "a " + te.Type.Kind().String()
	switch te.Type.Kind() {
	case reflect.Struct, reflect.Map:
		want = "an object"
	case reflect.Slice, reflect.Array:
		want = "an array"
	case reflect.Int, reflect.Int64, reflect.Float64:
		want = "a number"
	case reflect.Bool:
		want = "true or false"
	}
	field := te.Field
	if field == "" {
		field = "the document"
	}
	return fmt.Sprintf("%s is a JSON %s, want %s", field, te.Value, want)
}
