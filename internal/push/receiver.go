package push

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"
)

// The receiving side: what a push service checks and what a browser
// decrypts. Sori does not need them to send; they let tests (and anyone
// debugging a subscription) play the browser and the push service without
// the internet.

// VerifyAuthorization checks a VAPID Authorization header as a push
// service does: the JWT's ES256 signature against k=, and its audience and
// expiry (at most 24 h ahead, RFC 8292). It returns the public key.
func VerifyAuthorization(header, audience string, now time.Time) ([]byte, error) {
	rest, ok := strings.CutPrefix(header, "vapid ")
	if !ok {
		return nil, errors.New("not a vapid authorization")
	}
	var tok, pub string
	for _, part := range strings.Split(rest, ",") {
		part = strings.TrimSpace(part)
		if v, ok := strings.CutPrefix(part, "t="); ok {
			tok = v
		} else if v, ok := strings.CutPrefix(part, "k="); ok {
			pub = v
		}
	}
	pk, err := base64.RawURLEncoding.DecodeString(pub)
	if err != nil {
		return nil, err
	}
	key, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), pk)
	if err != nil {
		return nil, err
	}
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return nil, errors.New("malformed JWT")
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil || len(sig) != 64 {
		return nil, errors.New("malformed signature")
	}
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if !ecdsa.Verify(key, sum[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
		return nil, errors.New("bad signature")
	}
	cb, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil, err
	}
	var claims struct {
		Aud string `json:"aud"`
		Exp int64  `json:"exp"`
		Sub string `json:"sub"`
	}
	if err := json.Unmarshal(cb, &claims); err != nil {
		return nil, err
	}
	if claims.Aud != audience || claims.Exp <= now.Unix() || claims.Exp > now.Add(24*time.Hour).Unix() || claims.Sub == "" {
		return nil, fmt.Errorf("bad claims %+v", claims)
	}
	return pk, nil
}

// Decrypt opens an aes128gcm body (RFC 8188, keys per RFC 8291) with the
// subscription's private key and auth secret, as a browser does.
func Decrypt(body []byte, priv *ecdh.PrivateKey, authSecret []byte) ([]byte, error) {
	if len(body) < 21 {
		return nil, errors.New("push: body shorter than its header")
	}
	salt, rs, idlen := body[:16], binary.BigEndian.Uint32(body[16:20]), int(body[20])
	if idlen != 65 || len(body) < 21+idlen || rs < 18 {
		return nil, errors.New("push: bad aes128gcm header")
	}
	asPub, err := ecdh.P256().NewPublicKey(body[21 : 21+idlen])
	if err != nil {
		return nil, err
	}
	ct := body[21+idlen:]
	if len(ct) > int(rs) {
		return nil, errors.New("push: more than one record")
	}
	shared, err := priv.ECDH(asPub)
	if err != nil {
		return nil, err
	}
	cek, nonce, err := deriveKeys(shared, authSecret, salt, priv.PublicKey().Bytes(), asPub.Bytes())
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(cek)
	if err != nil {
		return nil, err
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	pt, err := gcm.Open(nil, nonce, ct, nil)
	if err != nil {
		return nil, fmt.Errorf("push: decrypt: %w", err)
	}
	// Strip the padding: zeros after the last record's delimiter, 0x02.
	i := len(pt) - 1
	for i >= 0 && pt[i] == 0 {
		i--
	}
	if i < 0 || pt[i] != 2 {
		return nil, errors.New("push: no last-record delimiter")
	}
	return pt[:i], nil
}
