package static

import (
	"testing"

	"github.com/mqd/mqd/discovery/discoverytest"
)

func TestConformance(t *testing.T) {
	discoverytest.Run(t, func(t *testing.T) discoverytest.Registry {
		s := &Static{MasterAddr: "127.0.0.1:10911", MasterHAAddr: "127.0.0.1:10912"}
		return discoverytest.Registry{Announcer: s, MasterAddr: s.MasterAddr, MasterHAAddr: s.MasterHAAddr}
	})
}
