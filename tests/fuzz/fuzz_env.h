/* SPDX-License-Identifier: MIT
 * fuzz_env.h — set-up the whole-connection fuzz targets (fuzz_proxy.c, fuzz_h2.c) share: the
 * files conf_load reads, and the epoll instances a worker left behind. Static functions, each
 * target includes it once; left out of coverage (harness code, not visor's).
 */
#ifndef VISOR_FUZZ_ENV_H
#define VISOR_FUZZ_ENV_H

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#ifndef NOCOV
#define NOCOV __attribute__((no_sanitize("coverage")))
#endif

/* dir/name holding text; 0 or -1. */
NOCOV static int
fz_write_file(const char *dir, const char *name, const char *text)
{
	char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	if (f == NULL)
		return -1;
	fputs(text, f);
	return fclose(f) == 0 ? 0 : -1;
}

/* A self-signed P-256 certificate for localhost in dir/cert.pem and dir/key.pem (the TLS
 * contexts conf_load builds from them); 0 or -1. */
NOCOV static int
fz_write_cert(const char *dir)
{
	char path[128];
	EVP_PKEY *k = NULL;
	X509 *x = NULL;
	FILE *f = NULL;
	int rc = -1;

	k = EVP_EC_gen("P-256");
	x = X509_new();
	if (k == NULL || x == NULL)
		goto fail;
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600L * 24 * 365);
	X509_set_pubkey(x, k);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
	    (const unsigned char *)"localhost", -1, -1, 0);
	X509_set_issuer_name(x, X509_get_subject_name(x));
	if (X509_sign(x, k, EVP_sha256()) == 0)
		goto fail;
	snprintf(path, sizeof(path), "%s/cert.pem", dir);
	if ((f = fopen(path, "w")) == NULL || !PEM_write_X509(f, x) || fclose(f) != 0) {
		f = NULL;
		goto fail;
	}
	snprintf(path, sizeof(path), "%s/key.pem", dir);
	if ((f = fopen(path, "w")) == NULL || !PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL) ||
	    fclose(f) != 0) {
		f = NULL;
		goto fail;
	}
	f = NULL;
	rc = 0;
fail:
	if (f)
		fclose(f);
	X509_free(x);
	EVP_PKEY_free(k);
	return rc;
}

/* The descriptors of libevent epoll instances, as a bit set over the first 1024 fds. */
NOCOV static void
fz_epoll_fds(unsigned char set[128])
{
	struct dirent *d;
	char p[64], l[64];
	DIR *dir;
	ssize_t n;
	int fd;

	memset(set, 0, 128);
	if ((dir = opendir("/proc/self/fd")) == NULL)
		return;
	while ((d = readdir(dir)) != NULL) {
		fd = atoi(d->d_name);
		if (d->d_name[0] == '.' || fd < 0 || fd >= 1024)
			continue;
		snprintf(p, sizeof(p), "/proc/self/fd/%d", fd);
		n = readlink(p, l, sizeof(l) - 1);
		if (n <= 0)
			continue;
		l[n] = '\0';
		if (strcmp(l, "anon_inode:[eventpoll]") == 0)
			set[fd / 8] |= (unsigned char)(1u << (fd % 8));
	}
	closedir(dir);
}

#endif
