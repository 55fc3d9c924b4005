package wire

import "errors"

// Sentinel errors returned (wrapped) by this package; match them with errors.Is.
var (
	// ErrFrameTooLarge reports a frame whose declared or actual length exceeds
	// the cap in force. It is wrapped with the size and the cap.
	ErrFrameTooLarge = errors.New("frame too large")
	// ErrTruncated reports input that ends before a value it declares.
	ErrTruncated = errors.New("truncated input")
	// ErrTrailingBytes reports input with bytes left over after a complete value.
	ErrTrailingBytes = errors.New("trailing bytes")
	// ErrInvalidValue reports a field whose bytes are present but not a legal
	// value: an unknown enum code, a bool other than 0 or 1.
	ErrInvalidValue = errors.New("invalid value")
	// ErrTooLong reports a value longer than its field allows (a stored
	// response over MaxStoredResponse), refused before allocation.
	ErrTooLong = errors.New("value too long")
	// ErrUnknownMessage reports a message whose tag this version does not know.
	ErrUnknownMessage = errors.New("unknown message tag")
)
