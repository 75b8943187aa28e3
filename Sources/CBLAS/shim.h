#include <cblas.h>

/* OpenBLAS's thread control, declared in its cblas.h; repeated here so the contract is visible. */
void openblas_set_num_threads(int num_threads);
int openblas_get_num_threads(void);
char *openblas_get_config(void);
char *openblas_get_corename(void);
