package p2p

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/theblock/tbops/internal/nodeconfig"
	"github.com/theblock/tbops/runtime"
)

func TestConfigValidate(t *testing.T) {
	require.NoError(t, DefaultConfig().Validate())
	c := DefaultConfig()
	c.MaxPerSec = -1
	c.RateWindowSecs = 0
	c.ChainSyncIntervalMS = 0 // off is allowed
	err := c.Validate()
	require.Error(t, err)
	assert.Equal(t, "p2p config: p2p_rate_window_secs = 0: out of range (allowed 1..3600 s)\n"+
		"p2p config: p2p_max_per_sec = -1: out of range (allowed 1..50000 requests)", err.Error())
	var ce *ConfigError
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, KeyRateWindowSecs, ce.Key)
}

// The public names and defaults are the node config table's, which
// runtime.LoadNodeConfig reads the file with.
func TestConfigKeysAreTheNodeConfigs(t *testing.T) {
	want := map[string][2]any{
		KeyRateWindowSecs:      {EnvRateWindowSecs, DefaultRateWindowSecs},
		KeyMaxPerSec:           {EnvMaxPerSec, DefaultMaxPerSec},
		KeyMaxBytesPerSec:      {EnvMaxBytesPerSec, DefaultMaxBytesPerSec},
		KeyChainSyncIntervalMS: {EnvChainSyncIntervalMS, DefaultChainSyncIntervalMS},
	}
	for key, w := range want {
		k, ok := nodeconfig.Lookup(key)
		require.True(t, ok, key)
		assert.Equal(t, w[0], k.Env, key)
		assert.EqualValues(t, w[1], k.Default, key)
	}
	assert.Equal(t, DefaultConfig(), Config(runtime.DefaultNodeConfig().P2P), "the loader's p2p part converts to a Config")
}
