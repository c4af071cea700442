"""Barbican's API application for tests: the configuration and paste files named by
BARBICAN_TEST_CONF and BARBICAN_TEST_PASTE (Barbican's own WSGI script reads only
/etc/barbican). Served by uwsgi from barbican-server.sh."""
import os

from barbican.common import config  # parses the defaults on import
from paste import deploy

config.parse_args(config.CONF, args=["--config-file", os.environ["BARBICAN_TEST_CONF"]])
application = deploy.loadapp("config:%s" % os.environ["BARBICAN_TEST_PASTE"])
