// SPDX-License-Identifier: BSD-2-Clause
/*
 * Unit tests for lib/redact.c: each kind of secret the built-in rules
 * promise to catch, what must survive around it, the rule grammar and its
 * errors, and the output bound.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "procfs.h"
#include "redact.h"

/* Redact @argv (NULL-terminated, argv[0] first) of @exe and return
 * argv[1..] joined by spaces, in a static buffer. */
static const char *red(const struct pf_redact *r, const char *exe, const char *const *argv)
{
	static char joined[8192];
	char raw[4096], out[8192];
	size_t len = 0, n;
	int trunc = 0;

	for (size_t i = 0; argv[i]; i++) {
		size_t l = strlen(argv[i]);

		assert_true(len + l + 1 < sizeof(raw));
		memcpy(raw + len, argv[i], l + 1);
		len += l + 1;
	}
	n = pf_redact__args(r, exe, raw, len, out, sizeof(out), &trunc, NULL);
	assert_int_equal(trunc, 0);
	pf_procfs__join_args(out, n, 1000, joined, sizeof(joined), &trunc);
	return joined;
}

#define ARGV(...) ((const char *const[]){__VA_ARGS__, NULL})

static struct pf_redact *builtin(void)
{
	struct pf_redact *r = pf_redact__new(1, NULL);

	assert_non_null(r);
	return r;
}

static void test_options(void **state)
{
	struct pf_redact *r = builtin();

	assert_string_equal(red(r, "/bin/x", ARGV("x", "--password=hunter2", "-v")),
			    "--password=[REDACTED] -v");
	assert_string_equal(red(r, "/bin/x", ARGV("x", "--password", "hunter2", "-v")),
			    "--password [REDACTED] -v");
	assert_string_equal(red(r, "/bin/x", ARGV("x", "-password", "hunter2")),
			    "-password [REDACTED]");
	assert_string_equal(red(r, "/bin/x", ARGV("x", "--token", "abc", "--secret=s3", "host")),
			    "--token [REDACTED] --secret=[REDACTED] host");
	assert_string_equal(red(r, "/bin/x", ARGV("x", "--api-key=AK1", "--api_key", "AK2")),
			    "--api-key=[REDACTED] --api_key [REDACTED]");
	/* A name ending in -password is a password too. */
	assert_string_equal(red(r, "/bin/x", ARGV("x", "--db-password=pw", "--DB_PASSWORD", "pw")),
			    "--db-password=[REDACTED] --DB_PASSWORD [REDACTED]");
	/* ... but not one that merely contains the word. */
	assert_string_equal(red(r, "/bin/x", ARGV("x", "--passwordless", "yes")),
			    "--passwordless yes");
	/* The next long option is not taken for the value. */
	assert_string_equal(red(r, "/bin/x", ARGV("x", "--password", "--verbose")),
			    "--password --verbose");
	/* Last argument: nothing follows. */
	assert_string_equal(red(r, "/bin/x", ARGV("x", "--password")), "--password");
	assert_string_equal(red(r, "/bin/x", ARGV("x", "--password=")), "--password=");
	pf_redact__free(r);
}

static void test_short(void **state)
{
	struct pf_redact *r = builtin();

	assert_string_equal(red(r, "/usr/bin/mysql", ARGV("mysql", "-uroot", "-pS3cret", "db")),
			    "-uroot -p[REDACTED] db");
	/* argv[0] names the program when the path does not. */
	assert_string_equal(red(r, "/usr/bin/mariadb", ARGV("mysqldump", "-pS3cret")),
			    "-p[REDACTED]");
	assert_string_equal(red(r, NULL, ARGV("/opt/bin/mysql", "-pS3cret")), "-p[REDACTED]");
	/* -p alone prompts; the next argument is the database. */
	assert_string_equal(red(r, "/usr/bin/mysql", ARGV("mysql", "-p", "db")), "-p db");
	/* Other programs' -p is not a password. */
	assert_string_equal(red(r, "/usr/bin/ssh", ARGV("ssh", "-p2222", "host")), "-p2222 host");
	pf_redact__free(r);
}

static void test_url_env_token(void **state)
{
	struct pf_redact *r = builtin();

	assert_string_equal(red(r, "/bin/x", ARGV("x", "https://bob:pa55@example.com/a?b=c")),
			    "https://bob:[REDACTED]@example.com/a?b=c");
	assert_string_equal(red(r, "/bin/x", ARGV("x", "url=postgres://u:p@h:5432/db,x://y@z")),
			    "url=postgres://u:[REDACTED]@h:5432/db,x://y@z");
	/* No password, no change; a port is not a password. */
	assert_string_equal(red(r, "/bin/x", ARGV("x", "http://bob@h:80/", "http://h:80/")),
			    "http://bob@h:80/ http://h:80/");
	assert_string_equal(red(r, "/bin/x", ARGV("x", "DB_PASSWORD=pw1", "MY_SECRET_X=2", "A=b")),
			    "DB_PASSWORD=[REDACTED] MY_SECRET_X=[REDACTED] A=b");
	assert_string_equal(red(r, "/bin/x", ARGV("x", "-e", "GITHUB_TOKEN=t", "--env=API_KEY=k")),
			    "-e GITHUB_TOKEN=[REDACTED] --env=API_KEY=[REDACTED]");
	assert_string_equal(
	    red(r, "/bin/x", ARGV("x", "ghp_a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8", "tail")),
	    "[REDACTED] tail");
	assert_string_equal(red(r, "/bin/x", ARGV("x", "-H", "Authorization: Bearer abc.def")),
			    "-H Authorization: Bearer [REDACTED]");
	/* What must survive: paths, hex digests (one case), UUIDs, plain words. */
	assert_string_equal(
	    red(r, "/bin/x",
		ARGV("x", "/usr/lib/x86_64-linux-gnu/LibFoo2Bar/something.so",
		     "0123456789abcdef0123456789abcdef01234567",
		     "123e4567-e89b-12d3-a456-426614174000", "hello")),
	    "/usr/lib/x86_64-linux-gnu/LibFoo2Bar/something.so "
	    "0123456789abcdef0123456789abcdef01234567 123e4567-e89b-12d3-a456-426614174000 "
	    "hello");
	pf_redact__free(r);
}

/*
 * Real command lines, as the kernel hands them over (one string per
 * argument, argv[0] first), with argv[1..] as they must come out. Each row
 * says what must be hidden or what must stay as it is; "R" is the
 * replacement text.
 */
#define R "[REDACTED]"

struct row {
	const char *exe;
	const char *argv[16];
	const char *want;
};

static const struct row rows[] = {
    /* ---- shell command strings: the words inside are a command line too */
    {"/bin/sh", {"sh", "-c", "mysql -uroot -pS3cret db"}, "-c mysql -uroot -p" R " db"},
    {"/bin/bash",
     {"bash", "-c", "curl --password=x https://example.com/"},
     "-c curl --password=" R " https://example.com/"},
    {"/bin/bash",
     {"bash", "-lc", "PGPASSWORD=hunter2 psql -h db -U app"},
     "-lc PGPASSWORD=" R " psql -h db -U app"},
    {"/bin/sh", {"sh", "-c", "mysql -u root '-pS3 cret' db"}, "-c mysql -u root '-p" R "' db"},
    {"/bin/sh",
     {"sh", "-c", "bash -c \"redis-cli -a s3cr3t ping\""},
     "-c bash -c \"redis-cli -a " R " ping\""},
    {"/usr/bin/sudo",
     {"sudo", "sh", "-c", "echo start; mysql -pS3cret -e 'select 1'"},
     "sh -c echo start; mysql -p" R " -e 'select 1'"},
    {"/usr/bin/kubectl",
     {"kubectl", "exec", "db-0", "--", "bash", "-c", "mysql -uroot -pS3cret"},
     "exec db-0 -- bash -c mysql -uroot -p" R},
    {"/bin/sh",
     {"sh", "-c", "curl -sf -u admin:pa55w0rd http://198.18.0.1/health || exit 1"},
     "-c curl -sf -u admin:" R " http://198.18.0.1/health || exit 1"},
    {"/bin/sh",
     {"sh", "-c", "curl -H 'Authorization: Bearer abc.def' https://api.example.com/v1"},
     "-c curl -H 'Authorization: Bearer " R "' https://api.example.com/v1"},
    {"/bin/sh",
     {"sh", "-c", "echo ok && docker login -u ci -p Zx9pass registry.example.com"},
     "-c echo ok && docker login -u ci -p " R " registry.example.com"},
    {"/bin/bash",
     {"bash", "-c", "exec \"$0\" \"$@\"", "myprog", "--password", "pw"},
     "-c exec \"$0\" \"$@\" myprog --password " R},
    /* a command separator starts a new program: ssh's -p is a port */
    {"/bin/sh",
     {"sh", "-c", "mysql -pS3cret db; ssh -p2222 host"},
     "-c mysql -p" R " db; ssh -p2222 host"},
    {"/bin/sh",
     {"sh", "-c", "openssl rsa -in k.pem -passin pass:S3cret -out k2.pem"},
     "-c openssl rsa -in k.pem -passin pass:" R " -out k2.pem"},
    {"/bin/sh",
     {"sh", "-c", "git clone https://u:ab/cd@git.example.com/o/r.git /src"},
     "-c git clone https://u:" R "@git.example.com/o/r.git /src"},
    {"/bin/sh", {"sh", "-c", "ls -la /tmp | wc -l"}, "-c ls -la /tmp | wc -l"},
    {"/bin/sh",
     {"sh", "/usr/local/bin/entrypoint.sh", "--password", "pw"},
     "/usr/local/bin/entrypoint.sh --password " R},
    /* a login shell (su - app -c ...) */
    {"/bin/bash", {"-bash", "-c", "mysql -pS3cret"}, "-c mysql -p" R},
    {"/bin/su",
     {"su", "-", "app", "-c", "redis-cli -a s3cr3t info"},
     "- app -c redis-cli -a " R " info"},
    /* a command line in one argument, for a remote or a repeating shell */
    {"/usr/bin/ssh",
     {"ssh", "-p", "2222", "db.example.com", "mysql -uroot -pS3cret -e 'show status'"},
     "-p 2222 db.example.com mysql -uroot -p" R " -e 'show status'"},
    {"/usr/bin/watch",
     {"watch", "-n5", "mysqladmin -uroot -pS3cret processlist | grep -c Query"},
     "-n5 mysqladmin -uroot -p" R " processlist | grep -c Query"},
    {"/usr/bin/git", {"git", "commit", "-m", "fix the curl call"}, "commit -m fix the curl call"},
    /* ---- curl -u USER:PASS, --user, --proxy-user */
    {"/usr/bin/curl", {"curl", "-u", "user:pass", "https://h/"}, "-u user:" R " https://h/"},
    {"/usr/bin/curl",
     {"curl", "--user", "deploy:S3cr3t/x", "https://h/"},
     "--user deploy:" R " https://h/"},
    {"/usr/bin/curl", {"curl", "-uadmin:hunter2", "https://h/"}, "-uadmin:" R " https://h/"},
    {"/usr/bin/curl",
     {"curl", "--user=admin:hunter2", "https://h/"},
     "--user=admin:" R " https://h/"},
    {"/usr/bin/curl", {"curl", "-u", "admin", "https://h/"}, "-u admin https://h/"},
    {"/usr/bin/curl",
     {"curl", "--proxy-user", "pu:pp", "-x", "http://proxy:3128", "https://h/"},
     "--proxy-user pu:" R " -x http://proxy:3128 https://h/"},
    /* ---- HTTP headers that carry credentials */
    {"/usr/bin/curl",
     {"curl", "-H", "Authorization: Basic dXNlcjpwYXNz", "https://h/"},
     "-H Authorization: Basic " R " https://h/"},
    {"/usr/bin/curl",
     {"curl", "-H", "Authorization: Bearer abc", "https://h/"},
     "-H Authorization: Bearer " R " https://h/"},
    {"/usr/bin/curl",
     {"curl", "-H", "X-Api-Key: 1234abcd", "https://h/"},
     "-H X-Api-Key: " R " https://h/"},
    {"/usr/bin/curl",
     {"curl", "--header", "x-api-key:abc", "https://h/"},
     "--header x-api-key:" R " https://h/"},
    {"/usr/bin/curl",
     {"curl", "--header=Authorization: token ghp_short", "https://h/"},
     "--header=Authorization: token " R " https://h/"},
    {"/usr/bin/curl",
     {"curl", "-H", "Proxy-Authorization: Basic Zm9vOmJhcg==", "https://h/"},
     "-H Proxy-Authorization: Basic " R " https://h/"},
    {"/usr/bin/curl",
     {"curl", "-H", "Cookie: session=abc123", "https://h/"},
     "-H Cookie: " R " https://h/"},
    {"/usr/bin/curl",
     {"curl", "-H", "X-Auth-Token: t0k", "https://h/"},
     "-H X-Auth-Token: " R " https://h/"},
    {"/usr/bin/curl",
     {"curl", "-H", "PRIVATE-TOKEN: glpat-abc", "https://gitlab.example.com/api/v4/projects"},
     "-H PRIVATE-TOKEN: " R " https://gitlab.example.com/api/v4/projects"},
    {"/usr/bin/wget",
     {"wget", "--header=Authorization: Bearer abc", "https://h/"},
     "--header=Authorization: Bearer " R " https://h/"},
    {"/usr/bin/git",
     {"git", "-c", "http.extraHeader=Authorization: Basic dXNlcjpw", "clone", "https://h/r.git"},
     "-c http.extraHeader=Authorization: Basic " R " clone https://h/r.git"},
    {"/usr/bin/curl",
     {"curl", "-H", "Content-Type: application/json", "-H", "Accept: */*", "https://h/"},
     "-H Content-Type: application/json -H Accept: */* https://h/"},
    /* ---- programs with a password option of their own */
    {"/usr/bin/docker",
     {"docker", "login", "-u", "ci", "-p", "Zx9pass", "registry.example.com"},
     "login -u ci -p " R " registry.example.com"},
    {"/usr/bin/docker",
     {"docker", "login", "--password", "Zx9pass", "-u", "ci"},
     "login --password " R " -u ci"},
    {"/usr/bin/docker",
     {"docker", "run", "-p", "8080:80", "-e", "MYSQL_ROOT_PASSWORD=pw", "mysql:8"},
     "run -p 8080:80 -e MYSQL_ROOT_PASSWORD=" R " mysql:8"},
    {"/usr/bin/docker",
     {"docker", "run", "-v", "/srv/mysql:/var/lib/mysql", "-p3306:3306", "mysql:8"},
     "run -v /srv/mysql:/var/lib/mysql -p3306:3306 mysql:8"},
    {"/usr/bin/podman", {"podman", "login", "-p", "pw", "quay.io"}, "login -p " R " quay.io"},
    {"/usr/bin/sshpass",
     {"sshpass", "-pS3cret", "ssh", "-p", "2222", "user@198.18.0.2"},
     "-p" R " ssh -p 2222 user@198.18.0.2"},
    {"/usr/bin/sshpass",
     {"sshpass", "-p", "S3cret", "scp", "f", "h:/tmp/"},
     "-p " R " scp f h:/tmp/"},
    {"/usr/bin/sshpass", {"sshpass", "-e", "ssh", "h"}, "-e ssh h"},
    {"/usr/bin/sshpass", {"sshpass", "-f", "/run/pw", "ssh", "h"}, "-f /run/pw ssh h"},
    {"/usr/bin/redis-cli", {"redis-cli", "-a", "s3cr3t", "ping"}, "-a " R " ping"},
    {"/usr/bin/redis-cli",
     {"redis-cli", "-h", "198.18.0.1", "-p", "6379", "-as3cr3t", "--no-auth-warning", "info"},
     "-h 198.18.0.1 -p 6379 -a" R " --no-auth-warning info"},
    {"/usr/bin/redis-cli",
     {"redis-cli", "--user", "default", "--pass", "s3cr3t"},
     "--user default --pass " R},
    {"/usr/bin/redis-cli",
     {"redis-cli", "-u", "redis://:s3cr3t@h:6379/0"},
     "-u redis://:" R "@h:6379/0"},
    {"/usr/bin/redis-server",
     {"redis-server", "--requirepass", "S3cret", "--masterauth", "S3cret2", "--port", "6380"},
     "--requirepass " R " --masterauth " R " --port 6380"},
    {"/usr/bin/openssl",
     {"openssl", "rsa", "-in", "k.pem", "-passin", "pass:S3cret", "-out", "k2.pem"},
     "rsa -in k.pem -passin pass:" R " -out k2.pem"},
    {"/usr/bin/openssl",
     {"openssl", "pkcs12", "-export", "-passout", "pass:x", "-in", "c.pem"},
     "pkcs12 -export -passout pass:" R " -in c.pem"},
    {"/usr/bin/openssl",
     {"openssl", "rsa", "-passin", "env:KEYPASS", "-in", "k.pem"},
     "rsa -passin env:KEYPASS -in k.pem"},
    {"/usr/bin/openssl",
     {"openssl", "rsa", "-passin", "file:/run/secrets/kp", "-passout", "fd:3"},
     "rsa -passin file:/run/secrets/kp -passout fd:3"},
    {"/usr/bin/openssl",
     {"openssl", "enc", "-aes-256-cbc", "-pass", "pass:x", "-in", "f"},
     "enc -aes-256-cbc -pass " R " -in f"},
    {"/usr/bin/gpg",
     {"gpg", "--batch", "--passphrase=S3cret", "-d", "f.gpg"},
     "--batch --passphrase=" R " -d f.gpg"},
    {"/usr/bin/gpg",
     {"gpg", "--batch", "--passphrase", "S3cret", "-d", "f.gpg"},
     "--batch --passphrase " R " -d f.gpg"},
    {"/usr/bin/gpg",
     {"gpg", "--passphrase-file", "/run/pp", "-d", "f.gpg"},
     "--passphrase-file /run/pp -d f.gpg"},
    {"/usr/bin/ssh-keygen",
     {"ssh-keygen", "-t", "ed25519", "-N", "newpass", "-f", "/root/.ssh/k"},
     "-t ed25519 -N " R " -f /root/.ssh/k"},
    {"/usr/bin/ldapsearch",
     {"ldapsearch", "-x", "-D", "cn=admin,dc=example,dc=org", "-w", "S3cret", "-b",
      "dc=example,dc=org"},
     "-x -D cn=admin,dc=example,dc=org -w " R " -b dc=example,dc=org"},
    {"/usr/bin/mysql",
     {"mysql", "-h", "db", "-P", "3306", "-uroot", "-pS3cret"},
     "-h db -P 3306 -uroot -p" R},
    {"/usr/bin/mysqladmin",
     {"mysqladmin", "-uroot", "-pS3cret", "status"},
     "-uroot -p" R " status"},
    {"/usr/bin/sudo", {"sudo", "-u", "mysql", "mysql", "-pS3cret"}, "-u mysql mysql -p" R},
    {"/usr/bin/mongosh",
     {"mongosh", "--username", "root", "--password", "pw"},
     "--username root --password " R},
    {"/usr/bin/pg_dump", {"pg_dump", "-h", "db", "-U", "app", "-W", "app"}, "-h db -U app -W app"},
    /* ---- URLs */
    {"/usr/bin/git",
     {"git", "clone", "https://user:ab/cd@github.com/o/r.git"},
     "clone https://user:" R "@github.com/o/r.git"},
    {"/usr/bin/psql",
     {"psql", "postgres://app:p/ss:w@rd@db:5432/app"},
     "postgres://app:" R "@db:5432/app"},
    {"/usr/bin/psql", {"psql", "postgresql://app:S3cret@db/app"}, "postgresql://app:" R "@db/app"},
    {"/usr/bin/mongosh",
     {"mongosh", "mongodb://root:pw@h1:27017,h2:27017/admin"},
     "mongodb://root:" R "@h1:27017,h2:27017/admin"},
    {"/usr/bin/curl", {"curl", "http://198.18.0.1:8080/a@b"}, "http://198.18.0.1:8080/a@b"},
    {"/usr/bin/curl",
     {"curl", "https://h/path/user@example.com", "https://h:8443/a/b?mail=x@y.z"},
     "https://h/path/user@example.com https://h:8443/a/b?mail=x@y.z"},
    {"/usr/bin/curl",
     {"curl", "https://api.example.com/v1/items?access_token=abc123&limit=10"},
     "https://api.example.com/v1/items?access_token=" R "&limit=10"},
    {"/usr/bin/curl",
     {"curl", "-d", "username=u&password=S3cret", "https://h/login"},
     "-d username=u&password=" R " https://h/login"},
    {"/usr/bin/psql",
     {"psql", "host=db port=5432 user=app password=S3cret dbname=app"},
     "host=db port=5432 user=app password=" R " dbname=app"},
    /* ---- KEY=VALUE */
    {"/usr/bin/env",
     {"env", "-i", "PATH=/bin", "REDIS_PASSWORD=x", "redis-server"},
     "-i PATH=/bin REDIS_PASSWORD=" R " redis-server"},
    {"/usr/bin/env",
     {"env", "MYSQL_PWD=S3cret", "mysql", "-uroot"},
     "MYSQL_PWD=" R " mysql -uroot"},
    {"/usr/bin/docker",
     {"docker", "run", "-e", "POSTGRES_PASSWORD=S3cret", "postgres:16"},
     "run -e POSTGRES_PASSWORD=" R " postgres:16"},
    {"/usr/bin/docker",
     {"docker", "run", "-e", "POSTGRES_PASSWORD_FILE=/run/secrets/db", "postgres:16"},
     "run -e POSTGRES_PASSWORD_FILE=/run/secrets/db postgres:16"},
    {"/usr/bin/java",
     {"java", "-Dspring.datasource.password=S3cret", "-jar", "app.jar"},
     "-Dspring.datasource.password=" R " -jar app.jar"},
    {"/usr/bin/helm",
     {"helm", "install", "db", "bitnami/postgresql", "--set",
      "auth.password=S3cret,auth.database=app"},
     /* a pair that starts the argument: its value runs to the end */
     "install db bitnami/postgresql --set auth.password=" R},
    /* ---- tokens */
    {"/bin/x", {"x", "ghp_a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8", "tail"}, R " tail"},
    {"/usr/bin/curl",
     {"curl", "--oauth2-bearer",
      "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0."
      "dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
      "https://h/"},
     "--oauth2-bearer " R " https://h/"},
    {"/usr/bin/aws",
     {"aws", "configure", "set", "aws_secret_access_key",
      "q8Vz3kLmN0pR7sT2uW5xY9aB4cD6eF1gH+jK/lM3"},
     "configure set aws_secret_access_key " R},
    /* ---- what must stay as it is */
    {"/usr/bin/java",
     {"java", "-Dlog4j.configurationFile=Log4j2.xml", "-jar", "app.jar"},
     "-Dlog4j.configurationFile=Log4j2.xml -jar app.jar"},
    {"/usr/bin/java",
     {"java", "-Xmx2g", "-XX:+UseG1GC", "-Dspring.profiles.active=prod", "-cp", "/opt/app/lib/*",
      "com.example.Main"},
     "-Xmx2g -XX:+UseG1GC -Dspring.profiles.active=prod -cp /opt/app/lib/* com.example.Main"},
    {"/usr/bin/java",
     {"java", "-cp", "app.jar", "io.netty.handler.codec.http2.Http2FrameCodecBuilder"},
     "-cp app.jar io.netty.handler.codec.http2.Http2FrameCodecBuilder"},
    {"/usr/bin/java",
     {"java", "-Djava.security.auth.login.config=/etc/kafka/jaas.conf",
      "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule"},
     "-Djava.security.auth.login.config=/etc/kafka/jaas.conf "
     "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule"},
    {"/usr/bin/node",
     {"node", "--max-old-space-size=4096", "/srv/app/dist/server.js"},
     "--max-old-space-size=4096 /srv/app/dist/server.js"},
    {"/usr/bin/python3",
     {"python3", "-m", "gunicorn", "app.wsgi:application", "--bind", "0.0.0.0:8000", "--workers",
      "4"},
     "-m gunicorn app.wsgi:application --bind 0.0.0.0:8000 --workers 4"},
    {"/usr/bin/kube-apiserver",
     {"kube-apiserver", "--token-auth-file=/etc/kubernetes/tokens.csv",
      "--service-account-key-file=/etc/kubernetes/pki/sa.pub", "--secure-port=6443"},
     "--token-auth-file=/etc/kubernetes/tokens.csv "
     "--service-account-key-file=/etc/kubernetes/pki/sa.pub --secure-port=6443"},
    {"/usr/bin/kube-apiserver",
     {"kube-apiserver",
      "--tls-cipher-suites=TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,TLS_ECDHE_RSA_WITH_AES_256_GCM_"
      "SHA384"},
     "--tls-cipher-suites=TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,TLS_ECDHE_RSA_WITH_AES_256_GCM_"
     "SHA384"},
    {"/usr/bin/python3",
     {"python3", "train.py", "--max_tokens=512", "--tokenizer=bert-base-uncased"},
     "train.py --max_tokens=512 --tokenizer=bert-base-uncased"},
    {"/usr/bin/ssh",
     {"ssh", "-p", "2222", "-i", "/home/u/.ssh/id_ed25519", "u@198.18.0.2"},
     "-p 2222 -i /home/u/.ssh/id_ed25519 u@198.18.0.2"},
    {"/usr/bin/docker",
     {"docker", "pull",
      "registry.example.com/team/app@sha256:"
      "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
     "pull registry.example.com/team/app@sha256:"
     "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
    {"/usr/bin/kubectl",
     {"kubectl", "logs", "frontend-7f9c8d6b5-x2k4q", "--since=1h"},
     "logs frontend-7f9c8d6b5-x2k4q --since=1h"},
    {"/usr/lib/systemd/systemd",
     {"/usr/lib/systemd/systemd", "--switched-root", "--system", "--deserialize", "31"},
     "--switched-root --system --deserialize 31"},
    {"/usr/bin/iperf3", {"iperf3", "-c", "198.18.0.1", "-p", "5201"}, "-c 198.18.0.1 -p 5201"},
    {"/usr/bin/nc", {"nc", "-l", "-p", "8080"}, "-l -p 8080"},
    {"/usr/bin/mysql", {"mysql", "-p", "db"}, "-p db"},
    {"/usr/bin/gpg",
     {"gpg", "--keyserver", "hkps://keys.openpgp.org", "--recv-keys", "0xA1B2C3D4"},
     "--keyserver hkps://keys.openpgp.org --recv-keys 0xA1B2C3D4"},
    {"/usr/bin/envoy",
     {"envoy", "-c", "/etc/envoy/envoy.yaml", "--service-node", "Ingress2Gateway"},
     "-c /etc/envoy/envoy.yaml --service-node Ingress2Gateway"},
};

static void test_table(void **state)
{
	struct pf_redact *r = builtin();
	size_t bad = 0;

	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		const char *got = red(r, rows[i].exe, rows[i].argv);

		if (strcmp(got, rows[i].want)) {
			print_error("row %zu (%s):\n  want: %s\n  got:  %s\n", i, rows[i].argv[0],
				    rows[i].want, got);
			bad++;
		}
	}
	print_message("%zu rows, %zu wrong\n", sizeof(rows) / sizeof(rows[0]), bad);
	assert_int_equal(bad, 0);
	pf_redact__free(r);
}

static void test_rules(void **state)
{
	struct pf_redact *r = builtin();
	size_t n = pf_redact__count(r);
	char err[512];

	assert_true(n > 20);
	/* remove, add, comments */
	{
		static const char file[] = "# mine\n\nremove option token\noption pin\n";

		assert_int_equal(pf_redact__load(r, file, sizeof(file) - 1, err, sizeof(err)), 0);
	}
	assert_int_equal(pf_redact__count(r), n);
	assert_string_equal(red(r, "/bin/x", ARGV("x", "--token", "t", "--pin=1234")),
			    "--token t --pin=[REDACTED]");
	/* errors name the line and the rule */
	assert_int_equal(pf_redact__load(r, "option a\nfrobnicate x\n", 22, err, sizeof(err)),
			 -EINVAL);
	assert_non_null(strstr(err, "line 2"));
	assert_non_null(strstr(err, "frobnicate x"));
	assert_int_equal(pf_redact__rule(r, "option --x", 10, err, sizeof(err)), -EINVAL);
	assert_int_equal(pf_redact__rule(r, "option", 6, err, sizeof(err)), -EINVAL);
	assert_int_equal(pf_redact__rule(r, "token 3", 7, err, sizeof(err)), -EINVAL);
	assert_int_equal(pf_redact__rule(r, "token 99999999999999999999", 26, err, sizeof(err)),
			 -EINVAL);
	assert_int_equal(pf_redact__rule(r, "short p mysql", 13, err, sizeof(err)), -EINVAL);
	assert_int_equal(pf_redact__rule(r, "short -p /bin/mysql", 19, err, sizeof(err)), -EINVAL);
	assert_int_equal(pf_redact__rule(r, "short -p a,,b", 13, err, sizeof(err)), -EINVAL);
	assert_int_equal(pf_redact__rule(r, "url-password x", 14, err, sizeof(err)), -EINVAL);
	assert_int_equal(pf_redact__rule(r, "remove option nosuch", 20, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "no such rule"));
	/* clear: nothing is redacted */
	assert_int_equal(pf_redact__rule(r, "clear", 5, err, sizeof(err)), 0);
	assert_int_equal(pf_redact__count(r), 0);
	assert_string_equal(red(r, "/bin/x", ARGV("x", "--password=p")), "--password=p");
	pf_redact__free(r);

	/* Empty set from the start; the replacement text is configurable. */
	r = pf_redact__new(0, "<hidden>");
	assert_non_null(r);
	assert_int_equal(pf_redact__count(r), 0);
	assert_int_equal(pf_redact__rule(r, "env PIN", 7, err, sizeof(err)), 0);
	assert_string_equal(red(r, "/bin/x", ARGV("x", "MY_PIN=1", "--password=p")),
			    "MY_PIN=<hidden> --password=p");
	pf_redact__free(r);

	errno = 0;
	assert_null(pf_redact__new(1, ""));
	assert_int_equal(errno, EINVAL);
	assert_null(pf_redact__new(1, "a\nb"));
	pf_redact__free(NULL);
}

/* The program rule kinds from a rule file: what each takes, its errors. */
static void test_rule_kinds(void **state)
{
	struct pf_redact *r = pf_redact__new(0, NULL);
	char err[512];
	static const char file[] = "arg -k mytool,other:sub\n"
				   "userpass --auth mytool\n"
				   "passarg -pw mytool\n"
				   "header X-Signature\n"
				   "header Authorization scheme\n"
				   "shell mysh\n"
				   "wrapper run\n";

	assert_non_null(r);
	assert_int_equal(pf_redact__load(r, file, sizeof(file) - 1, err, sizeof(err)), 0);
	assert_int_equal(pf_redact__count(r), 7);
	assert_string_equal(red(r, "/bin/mytool", ARGV("mytool", "-k", "s1", "-ks2", "-k=s3")),
			    "-k [REDACTED] -k[REDACTED] -k=[REDACTED]");
	/* OPT compares exactly */
	assert_string_equal(red(r, "/bin/mytool", ARGV("mytool", "-K", "x")), "-K x");
	assert_string_equal(red(r, "/bin/mytool", ARGV("mytool", "--auth", "u:p", "--auth=u")),
			    "--auth u:[REDACTED] --auth=u");
	assert_string_equal(red(r, "/bin/mytool", ARGV("mytool", "-pw", "pass:x", "-pw", "env:X")),
			    "-pw pass:[REDACTED] -pw env:X");
	/* prog:sub: only once sub came after the program */
	assert_string_equal(red(r, "/bin/other", ARGV("other", "-k", "x", "sub", "-k", "y")),
			    "-k x sub -k [REDACTED]");
	assert_string_equal(
	    red(r, "/bin/x", ARGV("x", "X-Signature: abc", "Authorization: Digest u=1")),
	    "X-Signature: [REDACTED] Authorization: Digest [REDACTED]");
	/* a shell of one's own, a wrapper of one's own */
	assert_string_equal(red(r, "/bin/mysh", ARGV("mysh", "-c", "run -q mytool -k s")),
			    "-c run -q mytool -k [REDACTED]");
	assert_string_equal(red(r, "/bin/run", ARGV("run", "mytool", "-k", "s")),
			    "mytool -k [REDACTED]");
	/* remove takes the same text */
	assert_int_equal(pf_redact__rule(r, "remove arg -k mytool,other:sub", 30, err, sizeof(err)),
			 0);
	assert_string_equal(red(r, "/bin/mytool", ARGV("mytool", "-k", "s1")), "-k s1");

	assert_int_equal(pf_redact__rule(r, "arg k mytool", 12, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "the option of a program rule"));
	assert_int_equal(pf_redact__rule(r, "arg -k", 6, err, sizeof(err)), -EINVAL);
	assert_int_equal(pf_redact__rule(r, "arg -k a:", 9, err, sizeof(err)), -EINVAL);
	assert_int_equal(pf_redact__rule(r, "arg -k :b", 9, err, sizeof(err)), -EINVAL);
	assert_int_equal(pf_redact__rule(r, "arg -k a:b:c", 12, err, sizeof(err)), -EINVAL);
	assert_int_equal(pf_redact__rule(r, "shell sh:x", 10, err, sizeof(err)), -EINVAL);
	assert_int_equal(pf_redact__rule(r, "wrapper", 7, err, sizeof(err)), -EINVAL);
	assert_int_equal(pf_redact__rule(r, "header X-A bogus", 16, err, sizeof(err)), -EINVAL);
	assert_int_equal(pf_redact__rule(r, "header X:A", 10, err, sizeof(err)), -EINVAL);
	pf_redact__free(r);
}

/* The program names all rules list are bounded: the rule that would pass
 * the bound is refused and the set stays as it was. */
static void test_prog_cap(void **state)
{
	struct pf_redact *r = pf_redact__new(0, NULL);
	char line[PF_REDACT_MAX_RULES * 2], err[512];
	int i, n, e = 0;

	assert_non_null(r);
	for (i = 0; i < 40 && !e; i++) {
		n = snprintf(line, sizeof(line), "arg -x ");
		for (int j = 0; j < 50; j++)
			n += snprintf(line + n, sizeof(line) - (size_t)n, "%sp%d_%d", j ? "," : "",
				      i, j);
		e = pf_redact__rule(r, line, (size_t)n, err, sizeof(err));
	}
	assert_int_equal(e, -ENOSPC);
	assert_non_null(strstr(err, "too many program names"));
	assert_int_equal(pf_redact__count(r), 10); /* 10 x 50 names fit in 512, 11 do not */
	assert_string_equal(red(r, "/bin/p9_49", ARGV("p9_49", "-x", "s")), "-x [REDACTED]");
	assert_string_equal(red(r, "/bin/p10_0", ARGV("p10_0", "-x", "s")), "-x s");
	pf_redact__free(r);
}

/* A full rule table: the 257th is refused. */
static void test_rule_cap(void **state)
{
	struct pf_redact *r = pf_redact__new(0, NULL);
	char line[64], err[256];

	for (int i = 0; i < PF_REDACT_MAX_RULES; i++) {
		int n = snprintf(line, sizeof(line), "option w%d", i);

		assert_int_equal(pf_redact__rule(r, line, (size_t)n, err, sizeof(err)), 0);
	}
	assert_int_equal(pf_redact__rule(r, "option last", 11, err, sizeof(err)), -ENOSPC);
	pf_redact__free(r);
}

/* The output bound: a cut output holds no secret byte and is flagged. */
static void test_bound(void **state)
{
	struct pf_redact *r = builtin();
	static const char raw[] = "x\0--password=topsecretvalue\0tail";
	char out[24];
	int trunc = 0;
	size_t n;

	for (size_t sz = 0; sz <= sizeof(out); sz++) {
		trunc = 0;
		n = pf_redact__args(r, NULL, raw, sizeof(raw) - 1, out, sz, &trunc, NULL);
		assert_true(n <= sz);
		assert_null(memmem(out, n, "topsecret", 9));
		if (n >= 4)
			assert_null(memmem(out, n, "tops", 4));
	}
	/* Non-UTF-8 and control bytes pass through (the JSON writer escapes). */
	{
		static const char odd[] = "x\0\xff\xfe\x01\n\0--password=\xff";
		char o[64];
		unsigned cnt = 0;

		n = pf_redact__args(r, NULL, odd, sizeof(odd) - 1, o, sizeof(o), &trunc, &cnt);
		assert_int_equal(cnt, 1);
		assert_memory_equal(o, "x\0\xff\xfe\x01\n\0--password=[REDACTED]", n);
	}
	pf_redact__free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_options),	  cmocka_unit_test(test_short),
	    cmocka_unit_test(test_url_env_token), cmocka_unit_test(test_rules),
	    cmocka_unit_test(test_rule_cap),	  cmocka_unit_test(test_bound),
	    cmocka_unit_test(test_table),	  cmocka_unit_test(test_rule_kinds),
	    cmocka_unit_test(test_prog_cap),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
