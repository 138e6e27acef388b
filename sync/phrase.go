package sync

import (
	"strings"

	"github.com/tyler-smith/go-bip39"

	"github.com/agentkeys/agentkeys"
)

// PhraseWords is the number of words in a recovery phrase: 256 bits of key
// and an 8-bit checksum, 11 bits a word.
const PhraseWords = 24

// EncodePhrase returns the recovery phrase of a vault key: 24 words of the
// BIP-39 English list, on one line, separated by single spaces.
func EncodePhrase(key agentkeys.Key) (string, error) {
	return bip39.NewMnemonic(key[:])
}

// DecodePhrase returns the vault key a recovery phrase encodes. Case and
// surrounding or repeated whitespace do not matter. Returns EINVALID
// naming the position (1-24) of the first word not on the list, or saying
// the checksum failed (a word was swapped for another valid word) or how
// many words were given; the message never quotes a valid word.
func DecodePhrase(phrase string) (agentkeys.Key, error) {
	words := strings.Fields(strings.ToLower(phrase))
	if len(words) != PhraseWords {
		return agentkeys.Key{}, agentkeys.Errorf(agentkeys.EINVALID,
			"the recovery phrase has %d words, not %d: give all 24 words, in order, on one line", len(words), PhraseWords)
	}
	for i, w := range words {
		if _, ok := bip39.GetWordIndex(w); !ok {
			return agentkeys.Key{}, agentkeys.Errorf(agentkeys.EINVALID,
				"word %d of the recovery phrase is not a BIP-39 English word: check its spelling", i+1)
		}
	}
	ent, err := bip39.EntropyFromMnemonic(strings.Join(words, " "))
	if err != nil || len(ent) != agentkeys.KeySize {
		return agentkeys.Key{}, agentkeys.Errorf(agentkeys.EINVALID,
			"the recovery phrase's checksum does not match: a word is wrong or two are swapped; check each word against the one you wrote down")
	}
	var k agentkeys.Key
	copy(k[:], ent)
	clear(ent)
	return k, nil
}
