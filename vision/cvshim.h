#ifndef CLASSPULSE_CVSHIM_H
#define CLASSPULSE_CVSHIM_H
#ifdef __cplusplus
extern "C" {
#endif
// cp_solve_pnp runs cv::solvePnP (iterative) for n point pairs. obj holds
// n*3 doubles, img n*2 doubles; rvec and tvec receive 3 doubles each. It
// returns 1 on success, 0 when OpenCV fails or throws (never aborts).
int cp_solve_pnp(const double *obj, const double *img, int n, double f, double cx, double cy, double *rvec, double *tvec);
// cp_set_num_threads sets OpenCV's worker thread count.
void cp_set_num_threads(int n);
#ifdef __cplusplus
}
#endif
#endif
