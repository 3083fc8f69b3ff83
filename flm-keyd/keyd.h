#ifndef KEYD_H
#define KEYD_H

/* keyd_sandbox.c */
void	keyd_sandbox(void);

#endif
