package push

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
)

// Message encryption for Web Push (RFC 8291) in the aes128gcm content
// coding (RFC 8188): a fresh ECDH key pair per message, whose shared secret
// with the subscription's p256dh key, mixed with the subscription's auth
// secret, gives the content key and nonce. The body is one record.

// recordSize is the rs of the aes128gcm header: one record holds the whole
// payload (at most maxPayload bytes), so any value above that works; 4096 is
// what browsers and push services expect.
const recordSize = 4096

// maxPayload bounds a notification's plaintext: push services accept 4096
// bytes of body, of which the header takes 86 and the tag 16 and the
// delimiter 1.
const maxPayload = recordSize - 86 - 16 - 1

// Encrypt encrypts payload to a subscription's keys: p256dh, the browser's
// uncompressed P-256 public key (65 bytes), and auth, its 16-byte secret.
func Encrypt(payload, p256dh, auth []byte) ([]byte, error) {
	if len(payload) > maxPayload {
		return nil, fmt.Errorf("push: payload of %d bytes is over %d", len(payload), maxPayload)
	}
	if len(auth) != 16 {
		return nil, errors.New("push: the auth secret is 16 bytes")
	}
	uaPub, err := ecdh.P256().NewPublicKey(p256dh)
	if err != nil {
		return nil, fmt.Errorf("push: p256dh: %w", err)
	}
	asPriv, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	shared, err := asPriv.ECDH(uaPub)
	if err != nil {
		return nil, fmt.Errorf("push: ECDH: %w", err)
	}
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return nil, err
	}
	asPub := asPriv.PublicKey().Bytes()
	cek, nonce, err := deriveKeys(shared, auth, salt, p256dh, asPub)
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
	header := make([]byte, 0, 21+len(asPub))
	header = append(header, salt...)
	header = binary.BigEndian.AppendUint32(header, recordSize)
	header = append(header, byte(len(asPub)))
	header = append(header, asPub...)
	// The last (and only) record ends with the delimiter 0x02; no padding.
	plain := append(append(make([]byte, 0, len(payload)+1), payload...), 2)
	return gcm.Seal(header, nonce, plain, nil), nil
}

// deriveKeys computes the content encryption key and nonce (RFC 8291
// section 3.4): IKM from the ECDH secret keyed by the auth secret and bound
// to both public keys, then RFC 8188's key and nonce from IKM and the salt.
func deriveKeys(shared, auth, salt, uaPub, asPub []byte) (cek, nonce []byte, err error) {
	// PRK_key = HMAC-SHA-256(auth_secret, ecdh_secret), then one block of
	// HKDF-Expand with info "WebPush: info" 0x00 ua_public as_public.
	mac := hmac.New(sha256.New, auth)
	mac.Write(shared)
	prkKey := mac.Sum(nil)
	info := append(append([]byte("WebPush: info\x00"), uaPub...), asPub...)
	ikm, err := hkdf.Expand(sha256.New, prkKey, string(info), 32)
	if err != nil {
		return nil, nil, err
	}
	prk, err := hkdf.Extract(sha256.New, ikm, salt)
	if err != nil {
		return nil, nil, err
	}
	if cek, err = hkdf.Expand(sha256.New, prk, "Content-Encoding: aes128gcm\x00", 16); err != nil {
		return nil, nil, err
	}
	if nonce, err = hkdf.Expand(sha256.New, prk, "Content-Encoding: nonce\x00", 12); err != nil {
		return nil, nil, err
	}
	return cek, nonce, nil
}
