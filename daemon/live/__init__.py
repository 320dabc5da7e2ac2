"""Live playback: the sample clock and transport (:mod:`.transport`), the mixer the audio
callback owns (:mod:`.player`), audio outputs (:mod:`.audio_out`), clip slots and triggers on top
of the job system (:mod:`.slots`), and the MIDI and Ableton Link front-ends (:mod:`.midi`)."""
