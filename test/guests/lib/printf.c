/*
 * A small printf onto the UART: %s %c %d %i %u %x %X %p %%, flags '0' and
 * '-', a width, and the length modifiers l, ll, z.  No floating point
 * (the guests are built with -mgeneral-regs-only).
 */
#include <stdarg.h>
#include "guest.h"

static int emit(const char *s, int len, int width, int left, char pad)
{
	int n = 0;
	if (!left)
		for (; width > len; width--, n++)
			uart_putc(pad);
	for (int i = 0; i < len; i++, n++)
		uart_putc(s[i]);
	if (left)
		for (; width > len; width--, n++)
			uart_putc(' ');
	return n;
}

int printf(const char *fmt, ...)
{
	va_list ap;
	int total = 0;
	va_start(ap, fmt);
	for (const char *p = fmt; *p; p++) {
		if (*p != '%') {
			uart_putc(*p);
			total++;
			continue;
		}
		p++;
		int left = 0;
		char pad = ' ';
		for (;; p++) {
			if (*p == '-')
				left = 1;
			else if (*p == '0')
				pad = '0';
			else
				break;
		}
		int width = 0;
		while (*p >= '0' && *p <= '9')
			width = width * 10 + (*p++ - '0');
		int lng = 0;
		while (*p == 'l' || *p == 'z') {
			lng++;
			p++;
		}
		char buf[24];
		int len = 0;
		switch (*p) {
		case 's': {
			const char *s = va_arg(ap, const char *);
			if (!s)
				s = "(null)";
			total += emit(s, (int)strlen(s), width, left, ' ');
			continue;
		}
		case 'c':
			buf[0] = (char)va_arg(ap, int);
			total += emit(buf, 1, width, left, ' ');
			continue;
		case '%':
			uart_putc('%');
			total++;
			continue;
		case 'd':
		case 'i': {
			s64 v = lng ? va_arg(ap, s64) : va_arg(ap, int);
			u64 u = v < 0 ? (u64)0 - (u64)v : (u64)v;
			char tmp[24];
			int t = 0;
			do {
				tmp[t++] = (char)('0' + u % 10);
				u /= 10;
			} while (u);
			if (v < 0) {
				if (pad == '0' && width > 0) {
					/* sign before the zero padding */
					uart_putc('-');
					total++;
					width--;
				} else {
					tmp[t++] = '-';
				}
			}
			while (t)
				buf[len++] = tmp[--t];
			break;
		}
		case 'u':
		case 'x':
		case 'X':
		case 'p': {
			u64 u;
			unsigned base = *p == 'u' ? 10 : 16;
			const char *digits = *p == 'X' ? "0123456789ABCDEF" : "0123456789abcdef";
			if (*p == 'p') {
				u = (u64)(unsigned long)va_arg(ap, void *);
				uart_putc('0');
				uart_putc('x');
				total += 2;
			} else {
				u = lng ? va_arg(ap, u64) : va_arg(ap, unsigned);
			}
			char tmp[24];
			int t = 0;
			do {
				tmp[t++] = digits[u % base];
				u /= base;
			} while (u);
			while (t)
				buf[len++] = tmp[--t];
			break;
		}
		default:
			/* Unknown conversion: print it as-is so the mistake shows. */
			uart_putc('%');
			if (*p)
				uart_putc(*p);
			else
				p--;
			total += 2;
			continue;
		}
		total += emit(buf, len, width, left, pad);
	}
	va_end(ap);
	return total;
}
