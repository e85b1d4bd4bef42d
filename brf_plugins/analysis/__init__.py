"""The paper's analyses as reusable functions: single neurons, frequency response, divergence boundary and
stability, parameters and data spectrum, robustness studies and ablations.

Compute functions return small dataclasses of numpy arrays (plot them your own way); ``plot_*`` functions draw
them and return :class:`PlotResult` ``(figure, data)``: a pyplot-free :class:`matplotlib.figure.Figure` (works
headless, matplotlib is imported only when plotting) and the data shown. ``result.savefig("fig.png")`` saves it;
in Jupyter it displays as the figure.

=====================================  ==========================================================================
paper                                  functions
=====================================  ==========================================================================
Figures 1, 2, 10 (single neuron)       :func:`spike_train`, :func:`simulate_neuron`, :func:`compare_mechanisms`,
                                       :data:`MECHANISMS`, :func:`plot_neuron_trace`, :func:`plot_phase_portrait`
Figures 3, 8, A.4 (frequency resp.)    :func:`frequency_response`, :func:`plot_frequency_response`
A.5, A.11 (divergence boundary)        :func:`divergence_boundary_curves`, :func:`model_stability`,
                                       :func:`stability_from_parameters`, :func:`stability_region`,
                                       :func:`plot_divergence_boundary`, :func:`plot_stability`,
                                       :func:`plot_stability_region`
Figure 5 (parameters), data spectrum   :func:`neuron_parameters`, :func:`plot_parameters`,
                                       :func:`dataset_spectrum`, :func:`spectrum_omega_init`,
                                       :class:`SpectrumInit`, :func:`plot_spectrum`
A.10, Figures 7, 12 (robustness)       :func:`quantization_study`, :func:`input_noise_study`,
                                       :func:`spike_deletion_study`, :func:`synaptic_noise_study`,
                                       :func:`pruning_study`, :func:`plot_robustness`
A.8, A.9, Figures 10, 11 (ablations)   :data:`ABLATIONS`, :func:`build_ablation`, :func:`add_ablation_argument`,
                                       :func:`ablation_from_args`, :func:`switch_off_study`,
                                       :func:`plot_switch_off`, :func:`load_training_log`,
                                       :func:`ablation_summary`, :func:`plot_training_curves`
=====================================  ==========================================================================

Example:
    >>> from brf_plugins.analysis import frequency_response, plot_frequency_response
    >>> response = frequency_response(omega=20.0, b_offset=0.2)
    >>> round(response.peak_frequency / response.natural_frequency, 2)
    1.01
    >>> plot_frequency_response(response).savefig("response.png")      # doctest: +SKIP
"""

from ._plotting import PlotResult
from .ablations import (ABLATIONS, ablation_from_args, ablation_kwargs, ablation_summary, add_ablation_argument,
                        build_ablation, load_training_log, plot_switch_off, plot_training_curves,
                        switch_off_study)
from .frequency import FrequencyResponse, frequency_response, plot_frequency_response
from .parameters import NeuronParameters, neuron_parameters, plot_parameters
from .robustness import (STUDIES, RobustnessResult, as_batches, attach_recurrent_mask, input_noise_study,
                         plot_robustness, prune_recurrent, pruning_study, quantization_study, quantize,
                         quantize_model, recurrent_keep_mask, spike_deletion_study, synaptic_noise_study)
from .single_neuron import (MECHANISMS, SINGLE_NEURONS, NeuronTrace, compare_mechanisms, plot_neuron_trace,
                            plot_phase_portrait, simulate_neuron, spike_train)
from .spectrum import (Spectrum, SpectrumInit, dataset_spectrum, iter_sequences, plot_spectrum, resolve_omega_init,
                       spectrum_omega_init)
from .stability import (RADIUS_TOLERANCE, BoundaryCurves, StabilityRegion, StabilityReport,
                        divergence_boundary_curves, find_recurrent_layer, free_step_eigenvalues, free_step_matrix,
                        model_stability, plot_divergence_boundary, plot_stability, plot_stability_region,
                        stability_from_parameters, stability_region)

__all__ = [
    "resolve_omega_init",
    "PlotResult",
    # single neuron
    "SINGLE_NEURONS", "MECHANISMS", "NeuronTrace", "spike_train", "simulate_neuron", "compare_mechanisms",
    "plot_neuron_trace", "plot_phase_portrait",
    # frequency response
    "FrequencyResponse", "frequency_response", "plot_frequency_response",
    # divergence boundary and stability
    "RADIUS_TOLERANCE", "BoundaryCurves", "StabilityReport", "StabilityRegion", "free_step_matrix",
    "free_step_eigenvalues", "stability_from_parameters", "model_stability", "find_recurrent_layer",
    "divergence_boundary_curves", "stability_region", "plot_divergence_boundary", "plot_stability",
    "plot_stability_region",
    # parameters and data spectrum
    "NeuronParameters", "neuron_parameters", "plot_parameters", "Spectrum", "iter_sequences", "dataset_spectrum",
    "spectrum_omega_init", "SpectrumInit", "plot_spectrum",
    # robustness
    "STUDIES", "RobustnessResult", "quantize", "quantize_model", "as_batches", "quantization_study",
    "input_noise_study", "spike_deletion_study", "synaptic_noise_study", "recurrent_keep_mask", "prune_recurrent",
    "attach_recurrent_mask", "pruning_study", "plot_robustness",
    # ablations
    "ABLATIONS", "ablation_kwargs", "build_ablation", "add_ablation_argument", "ablation_from_args",
    "switch_off_study", "plot_switch_off", "load_training_log", "ablation_summary", "plot_training_curves",
]
