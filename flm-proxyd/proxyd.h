#ifndef PROXYD_H
#define PROXYD_H

/* proxyd_sandbox.c */
void	proxyd_sandbox(void);

#endif
