#pragma once
// The paper's figures (issue 19 §2) from a run summary and a diagnosis report, drawn with
// report/svg_chart.h. Each is made only when the database has something to draw; its caption
// says what each point is and which series were left out and why (a flip over a baseline that
// refused too little is undefined, never drawn as 0); a figure whose every series is undefined
// comes back without SVG, its caption saying why.
//   phase_transition_flip      conditional flip vs bits (per-token asymmetric sweep), one line per
//                              model and refusal benchmark, Wilson 95% bands, the regime lines
//   phase_transition_refusal   refusal rate vs bits (16 = full precision), the same lines
//   perplexity_vs_flip         perplexity ratio vs conditional flip, one point per bit width
//                              (the "perplexity hides it" scatter)
//   layer_sensitivity          model x layer heatmap of the flip with one layer quantized
//   channel_ablation           flip per channel subset of the critical layer, one bar per model
//   protection_recovery        recovery vs KV bytes added, per model, bits and protection

#include <string>
#include <vector>

#include "report/diagnosis_report.h"
#include "report/run_summary.h"

namespace kvsafe::report {

struct ReportFigure {
  std::string name{};     // [A-Za-z0-9_-]+; the figure's anchor and file stem
  std::string caption{};  // one line under it
  std::string svg{};      // an inline <svg> element (report/svg_chart.h); "" when nothing defined
                          // could be drawn (every line's flip undefined): the caption says why
};

std::vector<ReportFigure> paper_figures(const RunSummary& summary, const DiagnosisReport& diagnosis);

}  // namespace kvsafe::report
