#!/usr/bin/env bash
# Debian packages the tests use as real peers, installed when missing:
#   dnsmasq-base  a real DNS server: the stack's development DNS and the sender's direct-to-MX tests (binary only, no service)
#   swaks         a real SMTP client for the submission server's tests (+ its STARTTLS modules)
#   prometheus    promtool: checks the scrape configs and alert rules and runs their unit tests (the server is not started)
#   postfix       smtp-sink only (the sender's integration tests' SMTP server with scripted refusals);
#                 installed with "No configuration": the MTA is not set up or started
#   kcat          a stock Kafka reader: the analysts' tests read the topics with it (tests/e2e/test_analysts_tools.py)
#   chromium      the headless browser the console's end-to-end tests drive with Playwright (tests/e2e/test_console.py)
source "$(dirname "$0")/lib.sh"

needed=()
command -v dnsmasq >/dev/null || needed+=(dnsmasq-base)
command -v swaks >/dev/null || needed+=(swaks)
command -v promtool >/dev/null || needed+=(prometheus)
command -v chromium >/dev/null || needed+=(chromium)
command -v kcat >/dev/null || needed+=(kcat)
command -v smtp-sink >/dev/null || [ -x /usr/sbin/smtp-sink ] || needed+=(postfix)
for pkg in libnet-ssleay-perl libio-socket-ssl-perl; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || needed+=("$pkg")
done
[ ${#needed[@]} -eq 0 ] && exit 0
[ "$(id -u)" = 0 ] || die "missing Debian packages ${needed[*]}: run 'sudo apt-get install -y ${needed[*]}' once"
say "installing Debian packages: ${needed[*]}"
echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
apt-get update -qq >/dev/null
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${needed[@]}" >/dev/null
