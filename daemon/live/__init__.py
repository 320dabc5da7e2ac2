"""Live playback: the sample clock and transport (:mod:`.transport`), the one owner of tempo and
transport state (:mod:`.session`), the mixer the audio callback owns (:mod:`.player`), audio
outputs (:mod:`.audio_out`), clip slots and triggers (:mod:`.slots`) on top of the narrow job
system interface (:mod:`.jobsystem`), and the MIDI and Ableton Link front-ends (:mod:`.midi`)."""
