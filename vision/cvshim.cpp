#include "cvshim.h"
#include <opencv2/calib3d.hpp>
#include <opencv2/core.hpp>
#include <vector>

int cp_solve_pnp(const double *obj, const double *img, int n, double f, double cx, double cy, double *rvec, double *tvec) {
	try {
		std::vector<cv::Point3d> o;
		std::vector<cv::Point2d> p;
		for (int i = 0; i < n; i++) {
			o.emplace_back(obj[3 * i], obj[3 * i + 1], obj[3 * i + 2]);
			p.emplace_back(img[2 * i], img[2 * i + 1]);
		}
		cv::Matx33d k(f, 0, cx, 0, f, cy, 0, 0, 1);
		cv::Vec3d r, t;
		// SQPnP finds the global optimum without an initial guess; the
		// iterative Levenberg-Marquardt step then refines it.
		if (!cv::solvePnP(o, p, k, cv::noArray(), r, t, false, cv::SOLVEPNP_SQPNP)) {
			return 0;
		}
		cv::solvePnP(o, p, k, cv::noArray(), r, t, true, cv::SOLVEPNP_ITERATIVE);
		for (int i = 0; i < 3; i++) {
			rvec[i] = r[i];
			tvec[i] = t[i];
		}
		return 1;
	} catch (...) {
		return 0;
	}
}

void cp_set_num_threads(int n) { cv::setNumThreads(n); }
